#!/bin/sh
# The Debian tools the tests use, in one list (`.ci/run` and the tests' global
# set-up both run this). Installs what is missing when run as root; otherwise
# says loudly what is missing and how to get it. Never fails: tests that need a
# missing tool skip, saying so.
#
#   command   package        used by
TOOLS='
dpkg-deb  dpkg                   reference extraction, building test .debs, version ordering
nginx     nginx                  serving a repository on loopback (repo.test.ts, https.test.ts, bench/fleet.ts)
openssl   openssl                a CA and a certificate for https (https.test.ts)
rpm       rpm                    rpm packages (rpmbuild, rpm2cpio, rpm.vercmp)
cpio      cpio                   rpm2cpio | cpio reference extraction
pacman    pacman-package-manager pacman packages
makepkg   makepkg                building Arch packages (arch.test.ts); vercmp
bsdtar    libarchive-tools       archive listings
zstd      zstd                   zstd-compressed packages
xz        xz-utils               xz/lzma-compressed test archives
bzip2     bzip2                  bzip2-compressed test archives
ld        binutils               ELF fixtures (as, ld) and readelf, for the soname deps of trove build
/usr/bin/time time          peak memory of refusing a decompression bomb
strace    strace                 counting system calls (a non-blocking standard input is waited for, not spun on)
python3   python3-minimal        setting O_NONBLOCK on a standard input (e2e-cli.test.ts)
'
missing() {
  echo "$TOOLS" | while read -r cmd pkg _; do
    [ -n "$cmd" ] && ! command -v "$cmd" >/dev/null 2>&1 && echo "$pkg"
  done
}
need=$(missing | tr '\n' ' ' | sed 's/ $//')
# e2e-debian-root.test.ts fetches python3-minimal's closure with apt-get
# download (once, into bench/.cache): apt needs its package lists for that.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && ! apt-cache show python3-minimal >/dev/null 2>&1; then
  apt-get update -qq >&2
fi
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test-tools: installing $need" >&2
  apt-get update -qq >&2 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
  need=$(missing | tr '\n' ' ' | sed 's/ $//')
  [ -z "$need" ] && exit 0
fi
cat >&2 <<MSG

*** conary tests: missing Debian packages: $need
*** Tests that need them will be SKIPPED. Install them with:
***   sudo apt-get install $need     (or run: sudo sh scripts/test-tools.sh)

MSG
exit 0
