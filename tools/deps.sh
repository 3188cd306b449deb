#!/bin/sh
# deps.sh - installs what nudge needs to build and test, from Debian's packages.
# Checks first (pkg-config, headers, binaries) and stays quiet when all is there;
# otherwise runs apt-get update once and installs the missing packages (as root).
set -eu

missing=""
need() { missing="$missing $1"; }

for pair in libevent:libevent-dev libevent_openssl:libevent-dev lmdb:liblmdb-dev \
    libxml-2.0:libxml2-dev cmocka:libcmocka-dev jansson:libjansson-dev inih:libinih-dev \
    glib-2.0:libglib2.0-dev libsmpp34:libsmpp34-dev openssl:libssl-dev; do
	pc=${pair%%:*}
	pkg=${pair#*:}
	pkg-config --exists "$pc" 2>/dev/null || need "$pkg"
done
command -v pkg-config >/dev/null 2>&1 || need pkg-config
[ -f /usr/include/csv.h ] || need libcsv-dev
command -v mdb_stat >/dev/null 2>&1 || need lmdb-utils
command -v clang >/dev/null 2>&1 || need clang
command -v clang-format >/dev/null 2>&1 || need clang-format
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
	need libclang-rt-14-dev
perl -MNet::SMPP -e1 >/dev/null 2>&1 || need libnet-smpp-perl
[ -x /usr/sbin/bearerbox ] || need kannel
[ -x /usr/sbin/smsbox ] || need kannel
command -v curl >/dev/null 2>&1 || need curl
command -v ab >/dev/null 2>&1 || need apache2-utils

[ -z "$missing" ] && exit 0

# shellcheck disable=SC2086
set -- $(printf '%s\n' $missing | sort -u)
echo "deps: installing $*"
if [ "$(id -u)" != 0 ]; then
	echo "deps: not root; install as root: apt-get install $*" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "$@" >/dev/null
# Debian's kannel package starts a system bearerbox on /etc/kannel; tests run their own.
if command -v systemctl >/dev/null 2>&1; then
	systemctl stop kannel >/dev/null 2>&1 || true
fi
/etc/init.d/kannel stop >/dev/null 2>&1 || true
echo "deps: done"
