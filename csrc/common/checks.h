// Input checks shared by every genfast op. Messages name the op and the argument:
//   "genfast.gram_matrix: expected features of shape (N, C, L), got [2, 3]"
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace genfast {

inline void check_dim(const at::Tensor& t, int64_t dim, const char* op, const char* name,
                      const char* shape) {
  TORCH_CHECK(t.dim() == dim, "genfast.", op, ": expected ", name, " of shape ", shape, ", got ",
              t.sizes());
}

inline void check_floating(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), "genfast.", op, ": expected ", name,
              " to be a floating-point tensor (float32, float64, float16 or bfloat16), got ",
              t.scalar_type());
}

inline void check_same_device(const at::Tensor& a, const char* a_name, const at::Tensor& b,
                              const char* b_name, const char* op) {
  TORCH_CHECK(a.device() == b.device(), "genfast.", op, ": expected ", b_name,
              " on the same device as ", a_name, " (", a.device(), "), got ", b.device());
}

}  // namespace genfast
