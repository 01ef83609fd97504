#!/usr/bin/env bash
# Makes the certificates the TLS tests use, with openssl, into DIR:
#   ca.crt ca.key              the test CA
#   server.crt server.key      etcd's: signed by the CA, for the IP addresses given
#   client.crt client.key      a client's: signed by the CA (mutual TLS)
#   other-ca.crt               another CA (a wrong caFile)
#   stranger.crt stranger.key  a client certificate signed by the other CA (unknown to etcd)
#   expired.crt expired.key    a client certificate of the CA that expired in 2020
#
#   make-certs.sh DIR IP [IP…]
set -euo pipefail
dir=$1; shift
mkdir -p "$dir"
cd "$dir"
san=$(printf 'IP:%s,' "$@"); san=${san%,}
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
ca() {  # name CN
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.crt" -days 3 -subj "/CN=$2" 2>/dev/null
}
leaf() {  # name CN ca extensions
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -out "$1.crt" -days 3 \
    -extfile <(printf '%s\n' "$4") 2>/dev/null
  rm -f "$1.csr"
}
ca ca swiftcni-test-ca
ca other-ca swiftcni-other-ca
leaf server etcd ca "subjectAltName=$san
extendedKeyUsage=serverAuth,clientAuth"
leaf client swiftcni-agent ca "extendedKeyUsage=clientAuth"
leaf stranger swiftcni-stranger other-ca "extendedKeyUsage=clientAuth"
# Expired: `openssl ca` takes explicit start and end dates.
key expired.key
openssl req -new -key expired.key -out expired.csr -subj /CN=swiftcni-expired 2>/dev/null
mkdir -p ca-db && : > ca-db/index.txt && echo 1000 > ca-db/serial
cat > ca-db/ca.cnf <<EOF
[ca]
default_ca = d
[d]
database = $PWD/ca-db/index.txt
new_certs_dir = $PWD/ca-db
serial = $PWD/ca-db/serial
private_key = $PWD/ca.key
certificate = $PWD/ca.crt
default_md = sha256
policy = p
x509_extensions = x
[p]
commonName = supplied
[x]
extendedKeyUsage = clientAuth
EOF
openssl ca -batch -config ca-db/ca.cnf -startdate 20200101000000Z -enddate 20200102000000Z \
  -in expired.csr -out expired.crt 2>/dev/null
rm -f expired.csr
chmod 600 ./*.key
