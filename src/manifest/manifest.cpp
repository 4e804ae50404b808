#include "shardinit/manifest/manifest.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "format/regular_file.hpp"
#include "shardinit/definition/tensor_definition.hpp"
#include "shardinit/engine/stream.hpp"
#include "shardinit/error.hpp"
#include "shardinit/format/safetensors.hpp"
#include "shardinit/layout/shard.hpp"
#include "util/checked.hpp"
#include "util/format_number.hpp"
#include "util/printable.hpp"
#include "util/strict_json.hpp"

namespace shardinit {

namespace {

using nlohmann::json;

// An error about the value at a place in the document; parse_manifest adds its line and column.
class ValueError : public Error {
 public:
  ValueError(detail::JsonPath at, const std::string& message)
      : Error(ErrorKind::invalid_argument, message), at_(std::move(at)) {}
  [[nodiscard]] const detail::JsonPath& at() const noexcept { return at_; }

 private:
  detail::JsonPath at_;
};

// What a value is, for "expected X, got Y" (bounded: a huge string or array is not repeated whole).
std::string type_of(const json& value) {
  if (value.is_string()) return "string " + detail::brief(value);
  if (value.is_boolean()) return "boolean " + value.dump();
  if (value.is_null()) return "null";
  if (value.is_array()) return "an array";
  if (value.is_object()) return "an object";
  return "number " + value.dump();
}

// Where a value sits, for messages: `tensors[1] ("fc1.bias").init.a`.
// `steps` is the same place as keys and indices, to find its line and column.
struct Path {
  std::string text;
  detail::JsonPath steps;
  [[nodiscard]] Path key(std::string_view k) const {
    const std::string shown = detail::printable(k);
    return {text.empty() ? shown : text + "." + shown, with(std::string(k))};
  }
  [[nodiscard]] Path element(std::size_t i) const { return {text + "[" + std::to_string(i) + "]", with(i)}; }
  // "tensors[1] (\"fc1.bias\").init: " (nothing at the top level)
  [[nodiscard]] std::string prefix() const { return text.empty() ? std::string() : text + ": "; }

 private:
  [[nodiscard]] detail::JsonPath with(std::variant<std::string, std::size_t> step) const {
    detail::JsonPath longer = steps;
    longer.push_back(std::move(step));
    return longer;
  }
};

[[noreturn]] void fail(const Path& at, const std::string& message) { throw ValueError(at.steps, message); }

void reject_unknown_keys(const json& object, const Path& where, std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : object.items()) {
    bool known = false;
    for (const auto a : allowed) known = known || key == a;
    if (!known) {
      std::string list;
      for (const auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      fail(where.key(key), where.prefix() + "unknown key " + detail::quote(key) + " (allowed: " + list + ")");
    }
  }
}

const json& require_key(const json& object, const Path& where, const char* key) {
  const auto it = object.find(key);
  if (it == object.end()) fail(where, where.prefix() + "missing required key \"" + key + "\"");
  return *it;
}

double number(const json& value, const Path& where) {
  if (!value.is_number()) fail(where, where.text + ": expected a number, got " + type_of(value));
  const double x = value.get<double>();
  if (!std::isfinite(x)) fail(where, where.text + ": " + value.dump() + " is not a finite number");
  return x;
}

std::uint64_t unsigned_integer(const json& value, const Path& where) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer() && value.get<std::int64_t>() == 0) return 0;  // -0
  if (value.is_number_integer()) fail(where, where.text + ": " + value.dump() + " is negative");
  fail(where, where.text + ": expected an integer from 0 to 2^64 - 1, got " + type_of(value));
}

Index positive_or_zero_index(const json& value, const Path& where) {
  if (value.is_number_integer() && !value.is_number_unsigned() && value.get<std::int64_t>() != 0) {
    fail(where, where.text + ": " + value.dump() + " is negative");
  }
  const std::uint64_t x = unsigned_integer(value, where);
  if (x > static_cast<std::uint64_t>(std::numeric_limits<Index>::max())) fail(where, where.text + ": " + value.dump() + " is too large");
  return static_cast<Index>(x);
}

std::string string_value(const json& value, const Path& where) {
  if (!value.is_string()) fail(where, where.text + ": expected a string, got " + type_of(value));
  return value.get<std::string>();
}

// Runs one of the library's parse_* functions, whose messages cannot know where the text came from,
// and puts the value's path in front of its message.
template <class Parse>
auto parse_at(const Path& at, Parse parse) {
  try {
    return parse();
  } catch (const Error& e) {
    fail(at, at.prefix() + e.what());
  }
}

double optional_number(const json& object, const Path& where, const char* key, double default_value) {
  const auto it = object.find(key);
  return it == object.end() ? default_value : number(*it, where.key(key));
}

init::Initializer parse_initializer(const json& spec, const Path& where) {
  if (!spec.is_object()) fail(where, where.text + ": expected an object like {\"fn\": \"normal\", \"std\": 0.02}, got " + type_of(spec));
  const Path at_fn = where.key("fn");
  const std::string fn = string_value(require_key(spec, where, "fn"), at_fn);
  const init::Kind kind = parse_at(at_fn, [&] { return init::parse_kind(fn); });
  using K = init::Kind;
  switch (kind) {
    case K::zeros:
    case K::ones:
    case K::lecun_uniform:
    case K::lecun_normal:
      reject_unknown_keys(spec, where, {"fn"});
      return init::Initializer(kind, std::monostate{});
    case K::constant:
      reject_unknown_keys(spec, where, {"fn", "val"});
      return init::constant_({number(require_key(spec, where, "val"), where.key("val"))});
    case K::uniform:
      reject_unknown_keys(spec, where, {"fn", "a", "b"});
      return init::uniform_({optional_number(spec, where, "a", 0.0), optional_number(spec, where, "b", 1.0)});
    case K::normal:
      reject_unknown_keys(spec, where, {"fn", "mean", "std"});
      return init::normal_({optional_number(spec, where, "mean", 0.0), optional_number(spec, where, "std", 1.0)});
    case K::trunc_normal:
      reject_unknown_keys(spec, where, {"fn", "mean", "std", "a", "b"});
      return init::trunc_normal_({optional_number(spec, where, "mean", 0.0), optional_number(spec, where, "std", 1.0),
                                  optional_number(spec, where, "a", -2.0), optional_number(spec, where, "b", 2.0)});
    case K::kaiming_uniform:
    case K::kaiming_normal: {
      reject_unknown_keys(spec, where, {"fn", "a", "mode", "nonlinearity"});
      init::KaimingOptions o;
      o.a = optional_number(spec, where, "a", 0.0);
      if (const auto it = spec.find("mode"); it != spec.end()) {
        const Path at = where.key("mode");
        const std::string mode = string_value(*it, at);
        o.mode = parse_at(at, [&] { return init::parse_fan_mode(mode); });
      }
      if (const auto it = spec.find("nonlinearity"); it != spec.end()) {
        const Path at = where.key("nonlinearity");
        const std::string nonlinearity = string_value(*it, at);
        o.nonlinearity = parse_at(at, [&] { return init::parse_nonlinearity(nonlinearity); });
      }
      return init::Initializer(kind, o);
    }
    case K::xavier_uniform:
      reject_unknown_keys(spec, where, {"fn", "a", "scale", "gain"});
      return init::xavier_uniform_({optional_number(spec, where, "a", init::XavierUniformOptions{}.a),
                                    optional_number(spec, where, "scale", 2.0), optional_number(spec, where, "gain", 1.0)});
    case K::xavier_normal:
      reject_unknown_keys(spec, where, {"fn", "scale", "gain"});
      return init::xavier_normal_({optional_number(spec, where, "scale", 2.0), optional_number(spec, where, "gain", 1.0)});
  }
  fail(where, where.text + ": unknown initializer");
}

// The run's mesh as a tensor's definition is resolved against (its axes, the topology if there is
// one) and the names a {"shard": ...} list may use for its axes.
struct MeshContext {
  JobContext job;                       // the default mesh [world] has one axis
  std::vector<std::string> axis_names;  // "" for an unnamed axis
};

// A mesh axis in a {"shard": ...} list: its number, or its name.
int mesh_axis(const json& value, const Path& at, const MeshContext& mesh) {
  if (value.is_string()) {
    const std::string name = value.get<std::string>();
    // Unnamed axes (the tensor part's axes when it has several) have "" here: never matched.
    const auto it = name.empty() ? mesh.axis_names.end() : std::find(mesh.axis_names.begin(), mesh.axis_names.end(), name);
    if (it == mesh.axis_names.end()) {
      std::string known;
      for (const auto& n : mesh.axis_names) {
        if (!n.empty()) known += (known.empty() ? "" : ", ") + detail::quote(n);
      }
      fail(at, at.prefix() + "mesh axis " + detail::quote(name) + " does not exist" +
                   (known.empty() ? std::string(": the mesh's axes have no names") : " (the mesh's axes are " + known + ")"));
    }
    return static_cast<int>(it - mesh.axis_names.begin());
  }
  const std::uint64_t axis = unsigned_integer(value, at);
  if (axis >= mesh.job.mesh_axes) {  // here too, to point at the very element
    fail(at, at.prefix() + "mesh axis " + std::to_string(axis) + " does not exist: the mesh has " + std::to_string(mesh.job.mesh_axes) +
                 (mesh.job.mesh_axes == 1 ? " axis" : " axes"));
  }
  return static_cast<int>(axis);
}

// "layout": a preset name, or {"shard": {"tensor dim": [mesh axes]}}.
LayoutSpec parse_layout(const json& value, const Path& where, const Shape& shape, const MeshContext& mesh) {
  LayoutSpec spec;
  if (value.is_string()) {
    spec.kind = LayoutSpec::Kind::preset;
    spec.preset = value.get<std::string>();
    return spec;
  }
  if (!value.is_object()) {
    fail(where, where.prefix() + "expected a preset name or {\"shard\": {\"0\": [mesh axes], ...}}, got " + type_of(value));
  }
  reject_unknown_keys(value, where, {"shard"});
  const json& shard = require_key(value, where, "shard");
  if (!shard.is_object()) fail(where.key("shard"), where.key("shard").text + ": expected an object {\"tensor dim\": [mesh axes]}, got " + type_of(shard));
  spec.kind = LayoutSpec::Kind::custom;
  spec.shard.assign(shape.size(), {});
  for (const auto& [dim_text, axes] : shard.items()) {
    const Path at = where.key("shard").key(dim_text);
    std::size_t dim = 0;
    const auto [end, error] = std::from_chars(dim_text.data(), dim_text.data() + dim_text.size(), dim);
    if (error != std::errc() || end != dim_text.data() + dim_text.size() || dim >= shape.size()) {
      fail(at, at.prefix() + detail::quote(dim_text) + " is not a dimension of shape " + shape_to_string(shape) +
           " (expected \"0\".." + (shape.empty() ? std::string("none: a scalar cannot be split") : "\"" + std::to_string(shape.size() - 1) + "\"") + ")");
    }
    if (!axes.is_array()) fail(at, at.prefix() + "expected an array of mesh axes, got " + type_of(axes));
    for (std::size_t i = 0; i < axes.size(); ++i) spec.shard[dim].push_back(mesh_axis(axes[i], at.element(i), mesh));
  }
  return spec;
}

// "parallel": {"data": D, "pipeline": P or {"size": P, "layers": L, "partition": "uniform"},
//              "tensor": {"mode", "size", "depth"}, "order": ["dp", "pp", "tp"], "expert": E,
//              "data_partition": "zero3"}
Topology parse_topology(const json& value, const Path& at) {
  if (!value.is_object()) fail(at, at.prefix() + "expected {\"tensor\": {\"mode\": ..., \"size\": ...}, \"data\": ..., \"pipeline\": ...}, got " + type_of(value));
  reject_unknown_keys(value, at, {"tensor", "data", "pipeline", "order", "expert", "data_partition"});
  Topology topology;
  const auto small_int = [](const json& v, const Path& p) {
    const std::uint64_t n = unsigned_integer(v, p);
    if (n < 1 || n > 1u << 20) fail(p, p.prefix() + "must be between 1 and 2^20, got " + std::to_string(n));
    return static_cast<int>(n);
  };
  if (const auto tensor = value.find("tensor"); tensor != value.end()) {
    const Path at_tensor = at.key("tensor");
    if (!tensor->is_object()) fail(at_tensor, at_tensor.prefix() + "expected {\"mode\": ..., \"size\": ...}, got " + type_of(*tensor));
    reject_unknown_keys(*tensor, at_tensor, {"mode", "size", "depth"});
    const std::string mode = string_value(require_key(*tensor, at_tensor, "mode"), at_tensor.key("mode"));
    topology.tensor.mode = parse_at(at_tensor.key("mode"), [&] { return parse_tensor_parallel_mode(mode); });
    if (!tensor->contains("size")) fail(at_tensor, at_tensor.prefix() + "missing required key \"size\"");
    topology.tensor.size = small_int((*tensor)["size"], at_tensor.key("size"));
    if (tensor->contains("depth")) topology.tensor.depth = small_int((*tensor)["depth"], at_tensor.key("depth"));
    (void)parse_at(at_tensor, [&] { return colossal_mesh(topology.tensor); });
  }
  if (const auto data = value.find("data"); data != value.end()) topology.data = small_int(*data, at.key("data"));
  if (const auto pipeline = value.find("pipeline"); pipeline != value.end()) {
    const Path p = at.key("pipeline");
    if (pipeline->is_object()) {
      reject_unknown_keys(*pipeline, p, {"size", "layers", "partition"});
      topology.pipeline = small_int(require_key(*pipeline, p, "size"), p.key("size"));
      if (const auto layers = pipeline->find("layers"); layers != pipeline->end()) {
        PipelineLayers placed;
        const std::uint64_t l = unsigned_integer(*layers, p.key("layers"));
        if (l < 1 || l > 1u << 20) fail(p.key("layers"), p.key("layers").prefix() + "must be between 1 and 2^20, got " + std::to_string(l));
        placed.layers = static_cast<int>(l);
        if (const auto rule = pipeline->find("partition"); rule != pipeline->end()) {
          const std::string name = string_value(*rule, p.key("partition"));
          placed.partition = parse_at(p.key("partition"), [&] { return parse_layer_partition(name); });
        }
        topology.layers = placed;
      } else if (pipeline->contains("partition")) {
        fail(p.key("partition"), p.key("partition").prefix() + "a partition needs \"layers\": the number of layers to place");
      }
    } else {
      topology.pipeline = small_int(*pipeline, p);
    }
  }
  if (const auto order = value.find("order"); order != value.end()) {
    const Path p = at.key("order");
    if (!order->is_array() || order->size() != 3) fail(p, p.prefix() + "expected the three axes outermost first, e.g. [\"pp\", \"dp\", \"tp\"], got " + type_of(*order));
    for (std::size_t i = 0; i < 3; ++i) {
      const std::string name = string_value((*order)[i], p.element(i));
      topology.order[i] = parse_at(p.element(i), [&] { return parse_parallel_axis(name); });
      if (topology.order[i] != ParallelAxis::data && topology.order[i] != ParallelAxis::pipeline && topology.order[i] != ParallelAxis::tensor) {
        fail(p.element(i), p.element(i).prefix() + "the order lists \"dp\", \"pp\" and \"tp\" (the expert axes are parts of \"dp\")");
      }
    }
    auto sorted = topology.order;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) fail(p, p.prefix() + "each of \"dp\", \"pp\" and \"tp\" must appear once");
  }
  if (const auto expert = value.find("expert"); expert != value.end()) topology.expert = small_int(*expert, at.key("expert"));
  if (topology.data && *topology.data % topology.expert != 0) {
    fail(at.key("expert"), at.key("expert").prefix() + "the expert parallel size " + std::to_string(topology.expert) +
                               " does not divide the data parallel size " + std::to_string(*topology.data));
  }
  if (const auto partition = value.find("data_partition"); partition != value.end()) {
    const Path p = at.key("data_partition");
    const std::string name = string_value(*partition, p);
    topology.data_partition = parse_at(p, [&] { return parse_data_partition(name); });
  }
  if (topology.data) {
    const long long ranks = static_cast<long long>(*topology.data) * topology.pipeline * topology.tensor.size;
    if (ranks > std::numeric_limits<int>::max()) fail(at, at.prefix() + "data x pipeline x tensor is " + std::to_string(ranks) + " ranks, more than 2^31 - 1");
  }
  return topology;
}

// The definition's keys, each parsed as JSON requires; what they mean is resolve()'s to decide.
TensorDefinition parse_definition(const json& object, const Path& where, const std::string& name, const MeshContext& mesh) {
  TensorDefinition d;
  d.name = name;
  const json& shape = require_key(object, where, "shape");
  if (!shape.is_array()) fail(where.key("shape"), where.key("shape").text + ": expected an array of dimensions, got " + type_of(shape));
  for (std::size_t i = 0; i < shape.size(); ++i) d.shape.push_back(positive_or_zero_index(shape[i], where.key("shape").element(i)));
  if (const auto it = object.find("dtype"); it != object.end()) {
    const Path at = where.key("dtype");
    const std::string dtype = string_value(*it, at);
    d.dtype = parse_at(at, [&] { return parse_dtype(dtype); });
  }
  d.initializer = parse_initializer(require_key(object, where, "init"), where.key("init"));
  for (const char* key : {"fan_in", "fan_out"}) {
    if (const auto it = object.find(key); it != object.end()) {
      const Index fan = positive_or_zero_index(*it, where.key(key));
      (std::string_view(key) == "fan_in" ? d.fans.fan_in : d.fans.fan_out) = fan;
    }
  }
  if (const auto it = object.find("fan_convention"); it != object.end()) {
    const Path at = where.key("fan_convention");
    const std::string text = string_value(*it, at);
    d.fan_convention = parse_at(at, [&] { return init::parse_fan_convention(text); });
  }
  if (const auto it = object.find("stream"); it != object.end()) d.stream = unsigned_integer(*it, where.key("stream"));
  if (const auto it = object.find("layout"); it != object.end()) d.layout = parse_layout(*it, where.key("layout"), d.shape, mesh);
  if (const auto it = object.find("stage"); it != object.end()) {
    const Path at = where.key("stage");
    const auto one = [&](const json& value, const Path& p) {
      const std::uint64_t s = unsigned_integer(value, p);
      if (s > static_cast<std::uint64_t>(std::numeric_limits<int>::max())) {
        fail(p, p.prefix() + "stage " + std::to_string(s) + " does not exist: a pipeline has at most 2^20 stages");
      }
      return static_cast<int>(s);
    };
    d.stages.emplace();
    if (it->is_array()) {
      for (std::size_t i = 0; i < it->size(); ++i) d.stages->push_back(one((*it)[i], at.element(i)));
    } else {
      d.stages->push_back(one(*it, at));
    }
  }
  if (const auto it = object.find("layer"); it != object.end()) {
    const std::uint64_t layer = unsigned_integer(*it, where.key("layer"));
    if (layer > static_cast<std::uint64_t>(std::numeric_limits<int>::max())) {
      fail(where.key("layer"), where.key("layer").prefix() + "layer " + std::to_string(layer) + " does not exist: a pipeline has at most 2^20 layers");
    }
    d.layer = static_cast<std::int64_t>(layer);
  }
  if (const auto it = object.find("data_partition"); it != object.end()) {
    const Path at = where.key("data_partition");
    const std::string text = string_value(*it, at);
    d.data_partition = parse_at(at, [&] { return parse_data_partition(text); });
  }
  if (const auto it = object.find("expert"); it != object.end()) {
    const Path at = where.key("expert");
    if (it->is_object()) {  // one whole expert: {"index": e, "of": N}
      reject_unknown_keys(*it, at, {"index", "of"});
      const auto count = [&](const char* key) {
        const Path p = at.key(key);
        const std::uint64_t n = unsigned_integer(require_key(*it, at, key), p);
        if (n > static_cast<std::uint64_t>(std::numeric_limits<Index>::max())) fail(p, p.prefix() + std::to_string(n) + " is too large (at most 2^63 - 1)");
        return static_cast<Index>(n);
      };
      d.whole_expert = WholeExpert{count("index"), count("of")};
    } else if (it->is_boolean()) {
      d.expert = it->get<bool>();
    } else {
      fail(at, at.prefix() + "expected true or false (a stack of experts along dimension 0), or {\"index\": e, \"of\": N} "
                             "(one whole expert), got " + type_of(*it));
    }
  }
  if (const auto it = object.find("fused"); it != object.end()) {  // {"dim": d, "parts": k}
    const Path at = where.key("fused");
    if (!it->is_object()) fail(at, at.prefix() + "expected {\"dim\": d, \"parts\": k}, got " + type_of(*it));
    reject_unknown_keys(*it, at, {"dim", "parts"});
    const std::uint64_t dim = unsigned_integer(require_key(*it, at, "dim"), at.key("dim"));
    const std::uint64_t parts = unsigned_integer(require_key(*it, at, "parts"), at.key("parts"));
    if (dim > 64) fail(at.key("dim"), at.key("dim").prefix() + "dimension " + std::to_string(dim) + " does not exist");
    if (parts < 1 || parts > static_cast<std::uint64_t>(std::numeric_limits<Index>::max())) {
      fail(at.key("parts"), at.key("parts").prefix() + "expected at least one part, got " + std::to_string(parts));
    }
    d.fused = FusedParts{static_cast<std::size_t>(dim), static_cast<Index>(parts)};
  }
  if (const auto it = object.find("padding_idx"); it != object.end()) {
    const Path at = where.key("padding_idx");
    if (!it->is_number_integer()) fail(at, at.prefix() + "expected an integer row, got " + type_of(*it));
    if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<Index>::max())) {
      fail(at, at.prefix() + it->dump() + " is too large");
    }
    d.padding_idx = it->get<std::int64_t>();
  }
  return d;
}

ManifestTensor parse_tensor(const json& object, const Path& where_index, const MeshContext& mesh) {
  if (!object.is_object()) fail(where_index, where_index.text + ": expected a tensor object, got " + type_of(object));
  const std::string name = string_value(require_key(object, where_index, "name"), where_index.key("name"));
  const Path where{where_index.text + " (" + detail::quote(name) + ")", where_index.steps};
  reject_unknown_keys(object, where, {"name", "shape", "dtype", "init", "fan_in", "fan_out", "fan_convention", "stream", "layout",
                                      "stage", "layer", "data_partition", "expert", "padding_idx", "fused"});
  const TensorDefinition definition = parse_definition(object, where, name, mesh);
  try {
    return resolve(definition, mesh.job);
  } catch (const DefinitionError& e) {
    const std::string_view key = definition_field_key(e.field());
    if (e.field() == DefinitionField::name) fail(where_index.key("name"), where_index.text + ".name: " + e.what());
    if (e.field() == DefinitionField::init) fail(where.key("init"), where.text + ": " + e.what());
    // The key itself where the definition has it; the tensor where the error is about a missing one.
    const Path at = object.contains(std::string(key)) ? where.key(key) : where;
    fail(at, at.prefix() + e.what());
  }
}
// "tensors[1] ("fc1.bias").init: key "std" appears twice in the same object"
std::string describe_duplicate(const json& document, const detail::DuplicateKey& duplicate) {
  Path where{"", {}};
  const json* node = &document;
  for (const auto& step : duplicate.object) {
    if (const auto* key = std::get_if<std::string>(&step)) {
      where = where.key(*key);
      node = node != nullptr && node->is_object() && node->contains(*key) ? &(*node)[*key] : nullptr;
    } else {
      const std::size_t index = std::get<std::size_t>(step);
      where = where.element(index);
      node = node != nullptr && node->is_array() && index < node->size() ? &(*node)[index] : nullptr;
      // Name the tensor, as every other message about a tensor does.
      if (where.text.starts_with("tensors[") && node != nullptr && node->is_object()) {
        const auto name = node->find("name");
        if (name != node->end() && name->is_string()) where.text += " (" + detail::quote(name->get<std::string>()) + ")";
      }
    }
  }
  return where.prefix() + "key " + detail::quote(duplicate.key) + " appears twice in the same object";
}

// The manifest's meaning, once it is known to be JSON. Messages start with the path of the bad value.
Manifest interpret(const json& document, std::string_view text) {
  const Path root{"", {}};
  if (!document.is_object()) fail(root, "expected a JSON object with \"seed\" and \"tensors\", got " + type_of(document));
  reject_unknown_keys(document, root, {"seed", "tensors", "mesh", "parallel"});

  Manifest manifest;
  manifest.seed = unsigned_integer(require_key(document, root, "seed"), root.key("seed"));
  MeshContext mesh_context;
  if (document.contains("mesh") && document.contains("parallel")) {
    fail(root.key("parallel"), "give either \"mesh\" or \"parallel\", not both (\"parallel\" defines the mesh)");
  }
  if (const auto it = document.find("mesh"); it != document.end()) {
    const Path at = root.key("mesh");
    if (!(it->is_array() || it->is_object()) || it->empty()) {
      fail(at, at.prefix() + "expected a non-empty array of mesh dimensions, or an object of named ones, got " + type_of(*it));
    }
    std::vector<int> shape;
    const auto dimension = [&](const json& value, const Path& p) {
      const std::uint64_t d = unsigned_integer(value, p);
      if (d < 1 || d > static_cast<std::uint64_t>(std::numeric_limits<int>::max())) {
        fail(p, p.prefix() + "a mesh dimension must be between 1 and 2^31 - 1, got " + std::to_string(d));
      }
      return static_cast<int>(d);
    };
    if (it->is_array()) {
      for (std::size_t i = 0; i < it->size(); ++i) shape.push_back(dimension((*it)[i], at.element(i)));
    } else {  // {"dp": 2, "tp": 4}: named axes, outermost first in the order written
      std::vector<std::pair<std::size_t, std::string>> written;
      for (const auto& [name, value] : it->items()) written.emplace_back(detail::locate_offset(text, at.key(name).steps), name);
      std::sort(written.begin(), written.end());
      for (const auto& [offset, name] : written) {
        if (name.empty()) fail(at.key(name), at.key(name).prefix() + "a mesh axis name is empty");
        shape.push_back(dimension((*it)[name], at.key(name)));
        manifest.mesh_axis_names.push_back(name);
      }
      mesh_context.axis_names = manifest.mesh_axis_names;
    }
    manifest.mesh = parse_at(at, [&] { return ProcessMesh(shape); }).shape();
    mesh_context.job.mesh_axes = shape.size();
  }
  if (const auto it = document.find("parallel"); it != document.end()) {
    manifest.parallel = parse_topology(*it, root.key("parallel"));
    mesh_context.job.mesh_axes = static_cast<std::size_t>(topology_axes(*manifest.parallel));
    mesh_context.job.parallel = manifest.parallel;
    mesh_context.axis_names = topology_axis_names(*manifest.parallel);
  }
  const json& tensors = require_key(document, root, "tensors");
  if (!tensors.is_array()) fail(root.key("tensors"), root.key("tensors").text + ": expected an array of tensors, got " + type_of(tensors));

  std::unordered_map<std::string, std::size_t> by_name;
  std::unordered_map<std::uint64_t, std::size_t> by_stream;
  std::int64_t total_bytes = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    ManifestTensor t = parse_tensor(tensors[i], root.key("tensors").element(i), mesh_context);
    // The file holds them after its header (8 bytes and at most kMaxSafetensorsHeader): all must fit.
    constexpr std::int64_t kMaxData = detail::kMaxFileBytes - 8 - static_cast<std::int64_t>(kMaxSafetensorsHeader);
    const auto sum = detail::checked_add(total_bytes, t.empty ? 0 : element_count(t.shape) * static_cast<std::int64_t>(dtype_size(t.dtype)));
    if (!sum || *sum > kMaxData) {
      const std::string which = i == 0 ? "tensor " + detail::quote(t.name) + " needs"
                                       : "tensors[0] to tensors[" + std::to_string(i) + "] (" + detail::quote(t.name) + ") add up to";
      const std::string bytes = sum ? std::to_string(*sum) + " bytes" : "more than 2^63 - 1 bytes";
      fail(root.key("tensors").element(i), which + " " + bytes + " of data, more than one safetensors file holds (" +
           std::to_string(kMaxData) + ": 2^63 - 1 bytes less the 8-byte length and the largest header)");
    }
    total_bytes = *sum;
    if (const auto [it, inserted] = by_name.emplace(t.name, i); !inserted) {
      fail(root.key("tensors").element(i).key("name"), "tensor name " + detail::quote(t.name) + " appears twice (tensors[" + std::to_string(it->second) +
           "] and tensors[" + std::to_string(i) + "])");
    }
    if (const auto [it, inserted] = by_stream.emplace(t.stream, i); !inserted) {
      fail(root.key("tensors").element(i), "tensors[" + std::to_string(it->second) + "] (" + detail::quote(manifest.tensors[it->second].name) +
           ") and tensors[" + std::to_string(i) + "] (" + detail::quote(t.name) + ") share stream " + std::to_string(t.stream) +
           ": their values would be identical; give one of them another \"stream\"");
    }
    manifest.tensors.push_back(std::move(t));
  }
  return manifest;
}

}  // namespace

Manifest parse_manifest(std::string_view json_text, std::string_view source) {
  const detail::StrictJson parsed = detail::parse_strict_json(json_text, source);
  try {
    if (parsed.duplicate) fail(Path{"", parsed.duplicate->object}, describe_duplicate(parsed.document, *parsed.duplicate));
    return interpret(parsed.document, json_text);
  } catch (const ValueError& e) {
    throw Error(e.kind(), std::string(source) + ": " + detail::locate(json_text, e.at()) + ": " + e.what());
  } catch (const Error& e) {
    throw Error(e.kind(), std::string(source) + ": " + e.what());
  }
}

Topology parse_topology_json(std::string_view json_text) {
  const detail::StrictJson parsed = detail::parse_strict_json(json_text, "parallel");
  try {
    if (parsed.duplicate) fail(Path{"parallel", parsed.duplicate->object}, describe_duplicate(parsed.document, *parsed.duplicate));
    return parse_topology(parsed.document, Path{"parallel", {}});
  } catch (const ValueError& e) {
    throw Error(e.kind(), e.what());
  }
}

std::vector<TensorHolding> manifest_holdings(const Manifest& manifest, int world, int rank) {
  const ProcessMesh mesh = manifest_mesh(manifest, world);
  if (rank < 0 || rank >= mesh.size()) {
    throw Error(ErrorKind::invalid_argument, "rank " + std::to_string(rank) + " is not one of the " + std::to_string(mesh.size()) + " ranks");
  }
  std::vector<TensorHolding> held;
  for (const ManifestTensor& t : manifest.tensors) {
    if (holds(t.layout, mesh, rank)) held.push_back(TensorHolding{&t, local_holding(t.shape, t.layout, mesh, rank)});
  }
  return held;
}

Holding fill_shard(const Manifest& manifest, std::string_view name, int world, int rank, std::span<std::byte> out) {
  const auto it = std::find_if(manifest.tensors.begin(), manifest.tensors.end(), [&](const ManifestTensor& t) { return t.name == name; });
  if (it == manifest.tensors.end()) {
    throw Error(ErrorKind::invalid_argument, "the manifest has no tensor " + detail::quote(name));
  }
  return fill_shard(manifest.seed, it->spec(), it->layout, manifest_mesh(manifest, world), rank, out);
}

ProcessMesh manifest_mesh(const Manifest& manifest, int world) {
  // One process holds everything: a mesh of the same axes, each of size 1, makes every box whole.
  if (world == 1) {
    const std::size_t axes = manifest.parallel ? static_cast<std::size_t>(topology_axes(*manifest.parallel))
                             : manifest.mesh   ? manifest.mesh->size()
                                               : 1;
    return ProcessMesh(std::vector<int>(axes, 1));
  }
  if (manifest.parallel) return topology_mesh(*manifest.parallel, world);
  const ProcessMesh mesh = manifest.mesh ? ProcessMesh(*manifest.mesh) : ProcessMesh({world});
  if (mesh.size() != world) {
    throw Error(ErrorKind::invalid_argument,
                "mesh " + mesh.to_string() + " has " + std::to_string(mesh.size()) + " ranks, but " + std::to_string(world) + " ranks are running");
  }
  return mesh;
}

Manifest load_manifest(const std::filesystem::path& path) {
  // Opened without blocking and refused unless a regular file (a FIFO would block, a device never end),
  // read only up to the size limit.
  const detail::RegularFile file(path, "manifest");
  Manifest manifest = parse_manifest(file.read_all(kMaxManifestBytes), detail::printable(path.string()));
  manifest.source = ManifestSource{path, file.identity().device, file.identity().inode, "manifest"};
  return manifest;
}

}  // namespace shardinit
