/* The machine's sgemm throughput (oneDNN dnnl_sgemm, all OpenMP threads) at a large
 * GEMM shape, the reference for the "fraction of GEMM throughput" of bench/sasrec_speed.sh.
 * Built by the script: cc -O2 sasrec_gemm_peak.c -ldnnl -fopenmp. Prints GFLOP/s. */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char** argv) {
  const long m = argc > 1 ? atol(argv[1]) : 2048, n = argc > 2 ? atol(argv[2]) : 2304,
             k = argc > 3 ? atol(argv[3]) : 100;
  float* a = malloc(sizeof(float) * m * k);
  float* b = malloc(sizeof(float) * k * n);
  float* c = malloc(sizeof(float) * m * n);
  for (long i = 0; i < m * k; ++i) a[i] = (float)(i % 7) * 0.1f;
  for (long i = 0; i < k * n; ++i) b[i] = (float)(i % 5) * 0.1f;
  double best = 0;
  for (int rep = 0; rep < 7; ++rep) {
    const double t0 = now();
    int it = 0;
    while (now() - t0 < 0.3) {
      dnnl_sgemm('N', 'N', m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
      ++it;
    }
    const double g = 2.0 * m * n * k * it / (now() - t0) / 1e9;
    if (g > best) best = g;
  }
  printf("%.1f\n", best);
  return 0;
}
