"""Write factlab/data.sha256: the sha256 of every dataset file factlab downloads, read from the original repositories
at the commits pinned in factlab.data (SOURCES), so that a download (or a local copy) can be checked against them.

Usage: python scripts/pin_data.py MIRROR_DIR...   (git clones of the source repositories, any folder names)
Each file is read with `git show <pinned commit>:<path>` from the mirror whose origin matches the source."""
import hashlib, subprocess, sys
from pathlib import Path

from factlab import data


def blob(mirrors:list[Path], repo:str, commit:str, path:str) -> bytes:
    "The file `path` at `commit` of GitHub repository `repo`, from whichever mirror holds that commit."
    for m in mirrors:
        out = subprocess.run(["git", "-C", str(m), "show", f"{commit}:{path}"], capture_output=True)
        if out.returncode == 0: return out.stdout
    sys.exit(f"{repo}@{commit}:{path} is in none of the mirrors {[str(m) for m in mirrors]}")


def main(mirrors:list[Path]):
    lines = ["# sha256 of each downloadable dataset file at its pinned commit (scripts/pin_data.py; format of sha256sum)"]
    for rel in sorted({r for rels in data._catalogue().values() for r in rels if not r.startswith("bigbench/")}):
        repo, commit, path = data.source_of(rel)
        lines.append(f"{hashlib.sha256(blob(mirrors, repo, commit, path)).hexdigest()}  {rel}")
    out = Path(data.__file__).with_name("data.sha256")
    out.write_text("\n".join(lines) + "\n"); print(f"wrote {len(lines) - 1} checksums to {out}")


if __name__ == "__main__": main([Path(p) for p in sys.argv[1:]])
