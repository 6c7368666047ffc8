import subprocess
import sys

from distill.common import provenance


def test_machine_info_keys_and_types():
    info = provenance.machine_info()
    assert set(info) == {"platform", "python", "cpu", "cpu_count", "torch_threads", "cuda", "openblas_num_threads"}
    assert isinstance(info["platform"], str) and info["python"] == sys.version.split()[0]
    assert isinstance(info["cpu"], str)
    assert isinstance(info["cpu_count"], int) and info["cpu_count"] >= 1
    assert isinstance(info["torch_threads"], int) and info["torch_threads"] >= 1
    assert isinstance(info["cuda"], bool)
    assert info["openblas_num_threads"] is None or isinstance(info["openblas_num_threads"], str)


def test_library_versions_of_the_installed_libraries():
    versions = provenance.library_versions()
    assert {"haystack-ai", "torch", "numpy", "transformers"} <= set(versions) <= set(provenance.LIBRARIES)
    assert all(isinstance(v, str) and v[0].isdigit() for v in versions.values())


def test_importing_provenance_imports_neither_haystack_nor_torch():
    code = "import sys, distill.common.provenance; print(sorted(m for m in ('haystack', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
