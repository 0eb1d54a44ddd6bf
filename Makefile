# Two commands on a fresh machine:  `make run` (set up + default sweep) and `make test`.
VENV ?= .venv
PYTHON ?= python3
# The CPU build of PyTorch; on a GPU box pass the build for your CUDA, e.g. TORCH="torch==2.11.0".
TORCH ?= torch==2.13.0
# ONNX Runtime on the GPU: ORT="onnxruntime-gpu==1.31.1" replaces the CPU onnxruntime (one package, one name).
ORT ?=
CORES ?= 4

STAMP := $(VENV)/.installed

.PHONY: run test setup clean

run: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

setup: $(STAMP)

# torch first, from its own spec, so that nothing later pulls a CUDA build by accident.
$(STAMP): envs/requirements.txt envs/requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q "$(TORCH)"
	$(VENV)/bin/python -m pip install -q -r envs/requirements.txt
	$(VENV)/bin/python -m pip install -q --no-deps -r envs/requirements-nodeps.txt
	if [ -n "$(ORT)" ]; then $(VENV)/bin/python -m pip uninstall -q -y onnxruntime && $(VENV)/bin/python -m pip install -q "$(ORT)"; fi
	touch $@

clean:
	rm -rf results .snakemake
