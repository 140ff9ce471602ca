// Vectorisable float exp/sigmoid/tanh for the training hot loops (GRU gates, losses).
//
// The compiler does not vectorise std::exp without -ffast-math, and a scalar expf per
// score element costs more than the GEMMs at GRU4Rec's shapes. fast_exp uses a Cody-Waite
// range reduction x = k ln2 + r, |r| <= ln2/2 (k rounded to nearest), and the degree-6 Taylor
// polynomial of e^r (truncation error < 1.3e-7 relative, about 2 ulp), then scales by 2^k through
// the exponent bits. Inputs are clamped to [-87.3, 88], so the result is always a finite normal
// float (e^-87.3 ~ 1.2e-38 stands in for underflow).
#pragma once

#include <cstdint>
#include <cstring>

namespace seqrec::kernels {

inline float fast_exp(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.0f ? 88.0f : x;
  // k = round(x / ln2) by the 1.5 * 2^23 trick (add/sub, vectorises without libm calls;
  // the compiler may not fold it without -ffast-math).
  const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  // Two-part ln2 (Cody-Waite) keeps r accurate for large |x|.
  float r = x - k * 0.693359375f;
  r = r + k * 2.12194440e-4f;
  float p = 1.3888889e-3f;    // 1/720
  p = p * r + 8.3333333e-3f;  // 1/120
  p = p * r + 4.1666667e-2f;  // 1/24
  p = p * r + 1.6666667e-1f;  // 1/6
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // A NaN input gives a NaN result through p; k itself must not be NaN when converted to
  // int (undefined behaviour, found by fuzz_model_file), so it is replaced by 0 there.
  const float kk = k == k ? k : 0.0f;
  const int32_t bits = (static_cast<int32_t>(kk) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

/// 1 / (1 + e^-x).
inline float fast_sigmoid(float x) {
  return 1.0f / (1.0f + fast_exp(-x));
}

/// tanh(x) = 1 - 2 / (e^{2x} + 1) (exact limits +-1 through the clamped exp).
inline float fast_tanh(float x) {
  return 1.0f - 2.0f / (fast_exp(2.0f * x) + 1.0f);
}

}  // namespace seqrec::kernels
