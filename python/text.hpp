#pragma once
// Values as a Python user writes them, for messages: shapes and boxes as tuples.

#include <string>
#include <vector>

#include "shardinit/tensor/shape.hpp"

namespace shardinit::python {

// "(3, 4)", "(5,)", "()".
inline std::string tuple_string(const std::vector<Index>& values) {
  std::string text = "(";
  for (std::size_t i = 0; i < values.size(); ++i) text += (i == 0 ? "" : ", ") + std::to_string(values[i]);
  return text + (values.size() == 1 ? ",)" : ")");
}

}  // namespace shardinit::python
