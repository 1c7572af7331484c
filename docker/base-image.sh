#!/usr/bin/env bash
# Makes the Debian 12 base image that docker/Dockerfile's FROM lines name, without a registry:
# `debootstrap --variant=minbase bookworm` from the mirror this machine's apt uses, trimmed the
# way Debian's -slim images are (no docs, man pages or locales; apt lists removed), packed as a
# tarball cached under build/deploy/ and imported with `podman import` under both names the
# Dockerfile uses (debian:bookworm for the build stage, debian:bookworm-slim for the runtime).
# Where a registry is reachable, `podman build` without --pull=never uses the real images instead.
# Usage: docker/base-image.sh [CACHE_DIR]   (default build/deploy)
# Nothing is redone that is there already: an image this script imported (its label) is kept,
# else the cached tarball is imported, else debootstrap runs (a few minutes).
set -euo pipefail
cache=${1:-build/deploy}
tarball=$cache/debian-bookworm-minbase.tar
names=(docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim)
label=org.convd.base=debootstrap-bookworm-minbase

# The mirror of the machine's bookworm suite (deb822 sources first, then one-line sources).
mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ && u {print u; exit}' "$f"
    done | head -n1 | grep . ||
        awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null | grep . ||
        { echo "base-image.sh: no bookworm mirror in this machine's apt sources" >&2; return 1; }
}

if podman image inspect --format '{{index .Labels "org.convd.base"}}' "${names[@]}" 2>/dev/null |
    grep -qx debootstrap-bookworm-minbase; then
    echo "base-image.sh: ${names[*]} already imported"
    exit 0
fi

mkdir -p "$cache"
if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || { echo "base-image.sh: debootstrap is not installed" >&2; exit 1; }
    url=$(mirror)
    root=$(mktemp -d "${TMPDIR:-/tmp}/convd-rootfs.XXXXXX")
    trap 'rm -rf "$root"' EXIT
    echo "base-image.sh: debootstrap --variant=minbase bookworm from $url (takes a few minutes)"
    start=$(date +%s)
    debootstrap --variant=minbase bookworm "$root" "$url" >"$cache/debootstrap.log" 2>&1 ||
        { tail -n 30 "$cache/debootstrap.log" >&2; exit 1; }
    # What Debian's -slim images leave out, for the packages installed on top as well.
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
CFG
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Install-Recommends "false";
Acquire::Languages "none";
CFG
    find "$root/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
        "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
        "$root"/var/log/*.log "$root"/var/log/apt/*
    tar -C "$root" --numeric-owner -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    echo "base-image.sh: $tarball made in $(( $(date +%s) - start )) s"
fi

id=$(podman import --quiet --change 'CMD ["bash"]' --change "LABEL $label" "$tarball" "${names[0]}")
for n in "${names[@]:1}"; do podman tag "$id" "$n"; done
id=${id#sha256:}
echo "base-image.sh: ${names[*]} = ${id:0:12}"
