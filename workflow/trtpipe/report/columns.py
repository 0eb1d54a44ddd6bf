"""Column names of benchmarks.csv and accuracy.csv that the report, `trtpipe compare` and `trtpipe decide` read.

The names are the CSVs' (trtpipe.benchmark.bench_columns, trtpipe.parity.ACCURACY_COLUMNS); code that reads a
column by name uses these constants, so a misspelt column is a NameError, not an empty table.
"""

# which engine and which batch a row is about
MODEL = "model"
BACKEND = "backend"
VARIANT = "variant"
PRECISION = "precision"
PROFILE = "profile"
BATCH = "batch"
ENGINE_KEYS = [MODEL, BACKEND, VARIANT, PRECISION, PROFILE]  # one engine (a combined one: one of its profiles)
ROW_KEYS = ENGINE_KEYS + [BATCH]  # one benchmark row
PROFILE_MIN, PROFILE_OPT, PROFILE_MAX = "profile_min", "profile_opt", "profile_max"

# benchmarks.csv
LATENCY_MEDIAN = "latency_ms_median"
LATENCY_P90 = "latency_ms_p90"
LATENCY_P99 = "latency_ms_p99"
THROUGHPUT = "throughput_samples_s"
COMPUTE_MEDIAN = "compute_ms_median"
COMPUTE_CV = "compute_cv"
CV = "cv"
ITERATIONS = "iterations"
UNSTABLE = "unstable"
WARNINGS = "warnings"
DEVICE = "device"
GIT_REV = "git_rev"
DEVICE_MEM = "device_mem_peak_bytes"
ENGINE_BYTES = "engine_bytes"
HOST_RSS = "host_rss_peak_bytes"
BUILD_S = "engine_build_s"
COMPILE_S = "compile_s"
GRAPHS_COMPILED = "graphs_compiled"
# added by the summary (report.analysis.add_efficiency)
FLOPS_PER_SAMPLE = "flops_per_sample"
ACHIEVED_TFLOPS = "achieved_tflops"
PEAK_TFLOPS = "peak_tflops"
EFFICIENCY = "efficiency"

# accuracy.csv
STAGE = "stage"
CASE = "case"
OUTPUT = "output"
PASSED = "passed"
MAX_ABS_ERR = "max_abs_err"
MAX_REL_ERR = "max_rel_err"
COSINE = "cosine"
ATOL, RTOL, MIN_COSINE = "atol", "rtol", "min_cosine"
REFERENCE_CONSTANT = "reference_constant"
