#!/bin/sh
# bootstrap.sh -- set up a fresh Debian machine for net, build and install
# it, and run the demo.  Safe to run again: installed packages and an
# up-to-date build are skipped.
set -eu
cd "$(dirname "$0")"

# dnsmasq-base is the dnsmasq program without the system DNS service of the
# dnsmasq package: examples/dns-client.lsp starts its own on loopback.  The
# cl-* packages are the libraries net-usocket runs on net (usocket, and its
# test suite's cl-rt) and those its tests and users stack on it; openssl and
# the rest serve cl+ssl, Drakma and Hunchentoot over net (net-ssl,
# contrib/net-tests/web/, their examples); wrk drives bench/hunchentoot.sh;
# valgrind runs make valgrind and bench/profile.sh (checked by make check).
PACKAGES="ecl libecl-dev libuv1-dev check autoconf automake libtool pkg-config
cl-fiveam texinfo make gcc socat netcat-openbsd iproute2 python3 curl
netbase util-linux clang-14 libclang-rt-14-dev dnsmasq-base valgrind
cl-usocket cl-rt cl-flexi-streams cl-chunga cl-drakma cl-hunchentoot cl-plus-ssl
cl-cffi openssl wrk iptables"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "bootstrap: installing Debian packages:$missing"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
else
  echo "bootstrap: Debian packages already installed"
fi

if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
  echo "bootstrap: autoreconf -fi"
  autoreconf -fi
fi
if [ ! -f Makefile ] || [ configure -nt Makefile ]; then
  echo "bootstrap: ./configure"
  ./configure
fi
echo "bootstrap: make"
make
echo "bootstrap: make install"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO make install

echo "bootstrap: running the demo, examples/echo.lsp, with the installed module"
ecl --norc --load examples/echo.lsp --eval '(ext:quit 0)' 2>&1 | grep -v '^;;;'
echo "bootstrap: done.  Run 'make check' for the tests."
