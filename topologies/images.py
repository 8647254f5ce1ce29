"""Building node images: debootstrap a Debian rootfs, ``docker import`` it.

Recipes are in ``images/images.yaml``. An image is tagged
``tunnelwall/NAME:<recipe hash>`` and ``tunnelwall/NAME:latest``, so a build
is skipped when the recipe is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from tunnelwall.topologies import dockerd
from tunnelwall.base import yamlsrc
from tunnelwall.base.errors import EnvironmentProblem, SourceError, TunnelwallError

RECIPES = Path(__file__).resolve().parents[1] / "images" / "images.yaml"


def recipes() -> dict[str, dict]:
    data = yamlsrc.load(RECIPES)
    out = {}
    for name, spec in data.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("packages"), list):
            raise SourceError(str(RECIPES), data.line_of(name), f"image '{name}': needs a packages list")
        out[name] = {"suite": str(spec.get("suite", "bookworm")), "packages": [str(p) for p in spec["packages"]],
                     "description": str(spec.get("description", ""))}
    return out


def tag(name: str, recipe: dict) -> str:
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    return f"tunnelwall/{name}:{digest}"


def build(name: str, say=print, force: bool = False) -> dict:
    all_recipes = recipes()
    if name not in all_recipes:
        raise TunnelwallError(f"unknown image '{name}' (recipes: {', '.join(all_recipes)})")
    recipe = all_recipes[name]
    if shutil.which("debootstrap") is None:
        raise EnvironmentProblem("building images needs debootstrap (run scripts/setup.sh)")
    dockerd.ensure()
    image = tag(name, recipe)
    if dockerd.image_exists(image) and not force:
        say(f"{name}: {image} is up to date")
        return {"image": image, "seconds": 0.0, "cached": True}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"tunnelwall-{name}-") as tmp:
        root = Path(tmp) / "rootfs"
        say(f"{name}: debootstrap {recipe['suite']} with {len(recipe['packages'])} packages ...")
        res = subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(recipe['packages'])}",
                              recipe["suite"], str(root)], capture_output=True, text=True)
        if res.returncode != 0:
            log = (res.stdout + res.stderr).strip().splitlines()
            raise TunnelwallError(f"image '{name}': debootstrap failed: {log[-1] if log else res.returncode}")
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for f in (root / cache).glob("*"):
                if f.is_file():
                    f.unlink()
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(root, arcname=".")
        say(f"{name}: docker import ...")
        repository, version = image.split(":")
        dockerd.client().api.import_image_from_file(str(archive), repository=repository, tag=version)
    client = dockerd.client()
    built = client.images.get(image)
    built.tag(image.split(":")[0], "latest")
    seconds = time.monotonic() - t0
    size_mb = built.attrs.get("Size", 0) / 1e6
    say(f"{name}: built {image} in {seconds:.0f}s, {size_mb:.0f} MB")
    return {"image": image, "seconds": seconds, "size_mb": size_mb, "cached": False}


def resolve(name: str) -> str:
    """The image a topology's ``image: NAME`` runs, or an error saying how to build it."""
    dockerd.ensure()
    short = name.split("/")[-1].split(":")[0]
    candidates = [name] if ":" in name else [f"{name}:latest", f"tunnelwall/{short}:latest"]
    for candidate in candidates:
        if dockerd.image_exists(candidate):
            return candidate
    hint = f"sudo .venv/bin/tunnelwall images build {short}" if short in recipes() else \
        f"a recipe in {RECIPES}, then tunnelwall images build NAME"
    raise TunnelwallError(f"image '{name}' is not built; build it with: {hint}")
