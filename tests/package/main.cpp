// Fills one shard of a kaiming-initialized weight through the installed package and checks it
// against the whole tensor: the smallest useful program a user would write.
#include <cstdio>
#include <cstring>
#include <vector>

#include <shardinit/shardinit.hpp>

int main() {
  using namespace shardinit;
  const auto initializer = init::kaiming_uniform_({.a = 2.23606797749979});
  const TensorSpec spec{"fc1.weight", {64, 48}, DType::f32, stream_from_name("fc1.weight"),
                        initializer(init::fans_from_shape({64, 48}))};
  std::vector<float> whole(64 * 48), shard(16 * 48);
  fill_box(42, spec, Box::whole(spec.shape), std::as_writable_bytes(std::span(whole)));
  fill_box(42, spec, Box{{16, 0}, {16, 48}}, std::as_writable_bytes(std::span(shard)));
  if (std::memcmp(shard.data(), whole.data() + 16 * 48, shard.size() * sizeof(float)) != 0) {
    std::puts("consumer: shard differs from the whole tensor");
    return 1;
  }
  std::puts("consumer: shard equals the slice of the whole tensor");
  return 0;
}
