/* The machine's bf16 GEMM throughput (oneDNN matmul, bf16 inputs, fp32 output, all OpenMP
 * threads) beside the fp32 one (dnnl_sgemm) at the same shape, measured alternately (7 rounds
 * of 0.3 s each, best of each): the reference of bench/bf16.sh, the bf16 sibling of
 * sasrec_gemm_peak.c. Built by the script: cc -O2 bf16_gemm_peak.c -ldnnl -fopenmp.
 * Usage: bf16_gemm_peak [m n k]. Prints one JSON object: m, n, k, fp32_gflops, bf16_gflops,
 * bf16_impl (oneDNN's implementation name, "ref" meaning no bf16 units). */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

#define CHECK(x)                                           \
  do {                                                     \
    if ((x) != dnnl_success) {                             \
      fprintf(stderr, "bf16_gemm_peak: %s failed\n", #x);  \
      exit(1);                                             \
    }                                                      \
  } while (0)

int main(int argc, char** argv) {
  const long m = argc > 1 ? atol(argv[1]) : 2048, n = argc > 2 ? atol(argv[2]) : 2304,
             k = argc > 3 ? atol(argv[3]) : 512;
  float* a = malloc(sizeof(float) * m * k);
  float* b = malloc(sizeof(float) * k * n);
  float* c = malloc(sizeof(float) * m * n);
  unsigned short* a16 = malloc(2 * m * k);
  unsigned short* b16 = malloc(2 * k * n);
  for (long i = 0; i < m * k; ++i) a[i] = (float)(i % 7) * 0.1f;
  for (long i = 0; i < k * n; ++i) b[i] = (float)(i % 5) * 0.1f;
  for (long i = 0; i < m * k; ++i) a16[i] = (unsigned short)(*(unsigned*)&a[i] >> 16);
  for (long i = 0; i < k * n; ++i) b16[i] = (unsigned short)(*(unsigned*)&b[i] >> 16);

  dnnl_engine_t eng;
  dnnl_stream_t st;
  CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
  CHECK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
  dnnl_memory_desc_t amd, bmd, cmd;
  const dnnl_dims_t ad = {m, k}, bd = {k, n}, cd = {m, n};
  CHECK(dnnl_memory_desc_init_by_tag(&amd, 2, ad, dnnl_bf16, dnnl_ab));
  CHECK(dnnl_memory_desc_init_by_tag(&bmd, 2, bd, dnnl_bf16, dnnl_ab));
  CHECK(dnnl_memory_desc_init_by_tag(&cmd, 2, cd, dnnl_f32, dnnl_ab));
  dnnl_matmul_desc_t md;
  CHECK(dnnl_matmul_desc_init(&md, &amd, &bmd, NULL, &cmd));
  dnnl_primitive_desc_t pd;
  CHECK(dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL));
  const char* impl = "?";
  CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
  dnnl_primitive_t mm;
  CHECK(dnnl_primitive_create(&mm, pd));
  dnnl_memory_t am, bm, cm;
  CHECK(dnnl_memory_create(&am, &amd, eng, a16));
  CHECK(dnnl_memory_create(&bm, &bmd, eng, b16));
  CHECK(dnnl_memory_create(&cm, &cmd, eng, c));
  dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};

  double best32 = 0, best16 = 0;
  for (int rep = 0; rep < 7; ++rep) {
    double t0 = now();
    int it = 0;
    while (now() - t0 < 0.3) {
      dnnl_sgemm('N', 'N', m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
      ++it;
    }
    double g = 2.0 * m * n * k * it / (now() - t0) / 1e9;
    if (g > best32) best32 = g;
    t0 = now();
    it = 0;
    while (now() - t0 < 0.3) {
      CHECK(dnnl_primitive_execute(mm, st, 3, args));
      CHECK(dnnl_stream_wait(st));
      ++it;
    }
    g = 2.0 * m * n * k * it / (now() - t0) / 1e9;
    if (g > best16) best16 = g;
  }
  printf("{\"m\": %ld, \"n\": %ld, \"k\": %ld, \"fp32_gflops\": %.1f, \"bf16_gflops\": %.1f, "
         "\"bf16_impl\": \"%s\"}\n",
         m, n, k, best32, best16, impl);
  return 0;
}
