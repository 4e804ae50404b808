#pragma once
// Everything a user of the library needs: the engine, distributions, Colossal-AI initializers,
// fill-any-box, manifests (by hand or from a Hugging Face config) and checkpoints.

#include "shardinit/definition/tensor_definition.hpp"
#include "shardinit/distributions/distribution.hpp"
#include "shardinit/dtype.hpp"
#include "shardinit/engine/element_engine.hpp"
#include "shardinit/engine/philox.hpp"
#include "shardinit/engine/stream.hpp"
#include "shardinit/error.hpp"
#include "shardinit/fill/fill.hpp"
#include "shardinit/initializers/colossal.hpp"
#include "shardinit/checkpoint/checkpoint.hpp"
#include "shardinit/format/safetensors.hpp"
#include "shardinit/layout/colossal_presets.hpp"
#include "shardinit/layout/mesh.hpp"
#include "shardinit/layout/shard.hpp"
#include "shardinit/layout/topology.hpp"
#include "shardinit/manifest/manifest.hpp"
#include "shardinit/models/hf_model.hpp"
#include "shardinit/tensor/shape.hpp"
#include "shardinit/version.hpp"
