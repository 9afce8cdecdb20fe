#!/usr/bin/env bash
# `make image`: the worker image the Helm chart runs, built without Docker, from Debian packages and the lock file.
#
#   1. the wheel, built from a copy of the packages with the pinned setuptools (requirements.lock), and every
#      archive of requirements.lock downloaded with its hash checked (pip download --require-hashes)
#   2. a root file system from Debian packages by mmdebstrap (variant essential, plus python3 and
#      ca-certificates; python3-venv only while installing), with the apt sources of this machine
#   3. buildah (chroot isolation, vfs storage, no daemon): the venv /opt/rueckkanal with exactly the runtime pins of
#      requirements.lock (offline, hashes required) and the wheel; pip, setuptools and python3-venv removed again;
#      user 10001;
#      OCI labels; committed as rueckkanal:<version>
#   4. the smoke test (scripts/image-smoke.sh): --version, check-config and render of an example as uid 10001 on a
#      read-only root file system; no compiler, no package manager cache, no test file; SBOM complete
#   5. dist/rueckkanal-<version>.oci.tar (oci-archive) and dist/rueckkanal-<version>.cdx.json (CycloneDX SBOM)
#
# Needs root (mmdebstrap and buildah's vfs storage in this mode) and the network to Debian's mirrors and PyPI.
# Debian's buildah, mmdebstrap and uidmap are installed with apt-get when missing.
#
# Environment:
#   RK_IMAGE_SOURCE   the org.opencontainers.image.source label (default: git's origin URL)
#   RK_BUILDAH_ROOT   buildah's storage (default ~/.cache/rueckkanal/buildah; vfs)
#   PYTHON            the Python that builds the wheel venv (default python3; must be 3.11 like the image's)
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=rueckkanal
SUITE=bookworm # Debian 12: python3 is 3.11, the version the lock file is compiled for
started=$(date +%s)
say() { echo "image.sh: [$(($(date +%s) - started)) s] $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
    say "needs root (mmdebstrap, buildah mount with vfs storage)"
    exit 1
fi
missing=()
for tool in buildah mmdebstrap newuidmap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
    say "installing Debian's buildah, mmdebstrap and uidmap (missing: ${missing[*]})"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends buildah mmdebstrap uidmap >&2
fi

version=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git status --porcelain 2>/dev/null)" ]]; then revision="$revision-dirty"; fi
source_url="${RK_IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || echo "file://$PWD")}"
image="$NAME:$version"
root="${RK_BUILDAH_ROOT:-$HOME/.cache/rueckkanal/buildah}"
buildah=(buildah --storage-driver vfs --root "$root/storage" --runroot "$root/run")
mkdir -p dist
archive="dist/$NAME-$version.oci.tar"
sbom="dist/$NAME-$version.cdx.json"

work="$(mktemp -d -t rk-image-XXXXXX)"
containers=()
cleanup() {
    local c
    for c in "${containers[@]}"; do "${buildah[@]}" rm "$c" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT

say "1/5 wheel and the archives of requirements.lock"
mkdir -p "$work/src" "$work/wheelhouse"
cp -r pyproject.toml README.md rueckkanal adapters streams "$work/src/"
find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
"${PYTHON:-python3}" -m venv "$work/buildenv"
pip=("$work/buildenv/bin/python" -m pip --disable-pip-version-check --quiet)
"${pip[@]}" install --no-deps --require-hashes -r requirements.lock
"${pip[@]}" wheel --no-deps --no-build-isolation -w "$work/wheelhouse" "$work/src"
"${pip[@]}" download --no-deps --require-hashes -r requirements.lock -d "$work/wheelhouse"
# The image installs the runtime pins only: the lock also pins the build backend (setuptools, wheel), which a
# running worker never imports. Their archives stay in the wheelhouse for an sdist that must be built.
python3 scripts/image_tools.py runtime-lock requirements.lock >"$work/wheelhouse/runtime.lock"
wheel=$(cd "$work/wheelhouse" && ls "$NAME"-*.whl)

say "2/5 root file system (mmdebstrap $SUITE, essential + python3, ca-certificates)"
mmdebstrap --quiet --variant=essential --include=python3,python3-venv,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    "$SUITE" "$work/rootfs.tar" /etc/apt/sources.list.d/debian.sources

say "3/5 buildah: venv, wheel, user, labels"
ctr=$("${buildah[@]}" from --isolation chroot scratch)
containers+=("$ctr")
"${buildah[@]}" add "$ctr" "$work/rootfs.tar" /
"${buildah[@]}" copy "$ctr" "$work/wheelhouse" /tmp/wheelhouse
run=("${buildah[@]}" run --isolation chroot --env PIP_NO_CACHE_DIR=1 --env PIP_DISABLE_PIP_VERSION_CHECK=1 "$ctr" --)
"${run[@]}" python3 -m venv /opt/rueckkanal
"${run[@]}" /opt/rueckkanal/bin/python -m pip install --quiet --no-index --find-links /tmp/wheelhouse \
    --no-deps --require-hashes -r /tmp/wheelhouse/runtime.lock
"${run[@]}" /opt/rueckkanal/bin/python -m pip install --quiet --no-index --no-deps "/tmp/wheelhouse/$wheel"
"${run[@]}" /opt/rueckkanal/bin/python -m pip check
# ensurepip put pip and setuptools into the venv; neither is a runtime pin, neither stays.
"${run[@]}" /opt/rueckkanal/bin/python -m pip uninstall --quiet --yes pip setuptools
"${run[@]}" dpkg --purge python3-venv python3-pip-whl python3-setuptools-whl python3.11-venv
"${run[@]}" sh -c 'rm -rf /tmp/wheelhouse /root/.cache /var/cache/apt/* /var/lib/apt/lists/* /var/cache/debconf/*-old \
    /var/log/* && echo "rueckkanal:x:10001:10001::/nonexistent:/usr/sbin/nologin" >>/etc/passwd \
    && echo "rueckkanal:x:10001:" >>/etc/group'
"${buildah[@]}" config \
    --user 10001:10001 --workingdir /tmp --port 6066 \
    --env PATH=/opt/rueckkanal/bin:/usr/local/bin:/usr/bin:/bin \
    --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 --env HOME=/tmp --env RK_DATA_DIR=/tmp/rueckkanal \
    --entrypoint '["rueckkanal"]' --cmd worker \
    --label org.opencontainers.image.title="$NAME" \
    --label org.opencontainers.image.description="Rückkanal worker, status-web and tools (rueckkanal CLI)" \
    --label org.opencontainers.image.version="$version" \
    --label org.opencontainers.image.revision="$revision" \
    --label org.opencontainers.image.source="$source_url" \
    --label org.opencontainers.image.licenses=EUPL-1.2 \
    --label org.opencontainers.image.created="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --label org.opencontainers.image.base.name="debian:$SUITE (mmdebstrap, variant essential)" \
    "$ctr"
"${buildah[@]}" commit --quiet --rm "$ctr" "$image" >/dev/null
containers=()

say "4/5 SBOM and smoke test"
RK_IMAGE="$image" RK_SBOM="$sbom" RK_BUILDAH_ROOT="$root" bash scripts/image-smoke.sh

say "5/5 $archive"
rm -f "$archive"
"${buildah[@]}" push --quiet "$image" "oci-archive:$archive:$image"
"${buildah[@]}" rmi --prune >/dev/null 2>&1 || true # earlier builds' images, now without a name
size=$("${buildah[@]}" images --format '{{.Size}}' "$image")
say "built $image in $(($(date +%s) - started)) s: $archive ($(du -h "$archive" | cut -f1) archive, $size unpacked)," \
    "SBOM $sbom"
