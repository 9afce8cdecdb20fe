#!/usr/bin/env bash
# The smoke test of the image built by scripts/image.sh, and its SBOM (called by it; runs again on its own with
# RK_IMAGE=rueckkanal:<version>). Fails on the first broken promise:
#   - `buildah run` as the image's user (10001): `rueckkanal --version` names the project's version, `check-config`
#     accepts the shipped mappings, `render` turns an example into a message that `validate` accepts
#   - the same commands on a read-only root file system (a read-only bind mount of the image, /tmp a tmpfs as the
#     chart's emptyDir), as uid 10001
#   - no compiler, no pip, no package manager cache, no file of the project's tests in the image
#   - the SBOM (CycloneDX JSON: every Python distribution of /opt/rueckkanal plus the Debian packages) lists every
#     installed distribution with its version
set -euo pipefail
cd "$(dirname "$0")/.."

image="${RK_IMAGE:?RK_IMAGE=rueckkanal:<version>}"
sbom="${RK_SBOM:-dist/${image/:/-}.cdx.json}"
root="${RK_BUILDAH_ROOT:-$HOME/.cache/rueckkanal/buildah}"
buildah=(buildah --storage-driver vfs --root "$root/storage" --runroot "$root/run")
version="${image##*:}"
example=config/examples/hundesteuer/hst-000123-06-400.json
say() { echo "image-smoke: $*" >&2; }
fail() {
    say "FAILED: $*"
    exit 1
}

work="$(mktemp -d -t rk-smoke-XXXXXX)"
ctr=$("${buildah[@]}" from --isolation chroot --pull-never "$image")
mounts=()
cleanup() {
    local i
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[i]}" 2>/dev/null || true; done
    "${buildah[@]}" umount "$ctr" >/dev/null 2>&1 || true
    "${buildah[@]}" rm "$ctr" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/examples/hundesteuer"
cp "$example" "$work/examples/hundesteuer/"
name=$(basename "$example")
run=("${buildah[@]}" run --isolation chroot --volume "$work/examples:/srv/examples:ro" "$ctr" --)

say "buildah run as the image's user"
[[ "$("${run[@]}" id -u)" == 10001 ]] || fail "the image does not run as uid 10001"
shown=$("${run[@]}" rueckkanal --version)
[[ "$shown" == "rueckkanal $version" ]] || fail "--version printed '$shown', expected 'rueckkanal $version'"
"${run[@]}" rueckkanal check-config
"${run[@]}" rueckkanal render "/srv/examples/hundesteuer/$name" >"$work/message.xml"
grep -q "statusmeldung.0100" "$work/message.xml" || fail "render did not print a Statusmeldung"

say "read-only root file system, uid 10001, /tmp a tmpfs"
mnt=$("${buildah[@]}" mount "$ctr")
ro="$work/ro"
mkdir -p "$ro"
mount --bind "$mnt" "$ro" && mounts+=("$ro")
mount -o remount,bind,ro "$ro"
mount -t tmpfs -o size=64m,mode=1777 tmpfs "$ro/tmp" && mounts+=("$ro/tmp")
mount --bind /dev "$ro/dev" && mounts+=("$ro/dev")
mount -t proc proc "$ro/proc" && mounts+=("$ro/proc")
cp -r "$work/examples" "$ro/tmp/examples"
cp "$work/message.xml" "$ro/tmp/message.xml"
chmod -R a+rX "$ro/tmp/examples" "$ro/tmp/message.xml"
as_user=(chroot --userspec=10001:10001 "$ro" /usr/bin/env -i PATH=/opt/rueckkanal/bin:/usr/bin:/bin HOME=/tmp
    PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8 RK_DATA_DIR=/tmp/rueckkanal)
if touch "$ro/probe" 2>/dev/null; then fail "the root file system of the test is writable"; fi
"${as_user[@]}" rueckkanal --version >/dev/null
"${as_user[@]}" rueckkanal check-config >/dev/null
"${as_user[@]}" rueckkanal render "/tmp/examples/hundesteuer/$name" >"$work/message-ro.xml"
cmp -s <(grep -v "<.*erstellungszeitpunkt>\|nachrichtenUUID" "$work/message.xml") \
    <(grep -v "<.*erstellungszeitpunkt>\|nachrichtenUUID" "$work/message-ro.xml") ||
    say "note: the read-only render differs from the first beyond time stamps (see $work)"
"${as_user[@]}" rueckkanal validate /tmp/message.xml

say "contents: no compiler, no pip, no package manager cache, no test files"
for tool in cc gcc g++ c++ clang ld as make; do
    "${as_user[@]}" sh -c "command -v $tool" >/dev/null 2>&1 && fail "a compiler or build tool is in the image: $tool"
done
if "${as_user[@]}" /opt/rueckkanal/bin/python -c "import pip" 2>/dev/null; then fail "pip is in the image"; fi
for dir in var/cache/apt/archives var/lib/apt/lists root/.cache tmp/wheelhouse usr/share/python-wheels; do
    if [[ -n "$(find "$ro/$dir" -type f 2>/dev/null | head -1)" ]]; then fail "package manager cache in /$dir"; fi
done
site="$ro/opt/rueckkanal/lib/python3.11/site-packages"
tests=$({
    find "$site/rueckkanal" "$site/adapters" "$site/streams" \( -name 'test_*.py' -o -name '*_test.py' \)
    find "$ro" -xdev \( -name conftest.py -o -path "$site/tests" -o -path "$ro/app" \)
} | head -5)
[[ -z "$tests" ]] || fail "test files in the image: $tests"

say "SBOM $sbom"
# cyclonedx-py reads the distributions of the paths a Python prints for sys.path; the image's Python prints its
# own, which are read here through the mount.
cat >"$work/image-python" <<EOF
#!/bin/sh
exec chroot "$ro" /opt/rueckkanal/bin/python -c 'import json, sys; json.dump(["$ro" + p for p in sys.path if p], sys.stdout)'
EOF
chmod +x "$work/image-python"
mkdir -p "$(dirname "$sbom")"
cyclonedx=${CYCLONEDX:-.venv/bin/cyclonedx-py}
"$cyclonedx" environment --output-format JSON --spec-version 1.6 --output-reproducible \
    --output-file "$sbom" "$work/image-python"
dpkg-query --admindir="$ro/var/lib/dpkg" -W -f '${Package}\t${Version}\t${Architecture}\n' >"$work/debs.tsv"
python3 scripts/image_tools.py add-debs "$sbom" "$work/debs.tsv"
"${as_user[@]}" /opt/rueckkanal/bin/python -c \
    'import json, importlib.metadata as m; print(json.dumps({d.metadata["Name"]: d.version for d in m.distributions()}))' \
    >"$work/installed.json"
python3 scripts/image_tools.py check-sbom "$sbom" "$work/installed.json"
say "passed ($(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$work/installed.json") Python" \
    "distributions and $(wc -l <"$work/debs.tsv") Debian packages in the SBOM)"
