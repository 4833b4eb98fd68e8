#!/usr/bin/env bash
# Issues test certificates with the openssl CLI, shaped like `gridnode ca issue` output
# (Docs/wire-protocol.md "Transport"): ECDSA P-256 / SHA-256,
# subject CN=name/OU=role[/L=district]/O=GridLedger, node SAN DNS:name,DNS:localhost,IP:127.0.0.1.
# usage: make_test_certs.sh DIR   -> DIR/ca.crt, DIR/{node1,col1node,ops1,col1,col2}.{crt,key},
#                                    DIR/{dn1,dn2,dn3}.{crt,key} (district d1 members, role node),
#                                    DIR/d2n1.{crt,key} (a node of d2), DIR/mkt1, DIR/dev1
#                                    (marketing; device of d1), DIR/other/fn1 (a d1 node
#                                    certificate of the unrelated CA),
#                                    DIR/other/ca.crt (an unrelated CA),
#                                    DIR/col1enc.key (col1.key, passphrase-encrypted),
#                                    DIR/p384.{crt,key} (a collector on P-384, not signable)
set -euo pipefail
dir=$1
mkdir -p "$dir/other"
cd "$dir"

mkca() { # dir
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$1/ca.key" -sha256 -days 2 -subj "/CN=GridLedger test CA/O=GridLedger" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$1/ca.crt" 2>/dev/null
}

issue() { # name role subject-extra is-server [curve]
  local name=$1 role=$2 extra=$3 server=$4 curve=${5:-P-256}
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:$curve -out "$name.key" 2>/dev/null
  openssl req -new -key "$name.key" -sha256 -subj "/CN=$name/OU=$role$extra/O=GridLedger" -out "$name.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    if [ "$server" = 1 ]; then echo "subjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1"; fi
  } > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 2 \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

mkca .
mkca other
issue node1 node "" 1
issue col1node collector "/L=d1" 1   # a server certificate whose role is not "node"
issue ops1 ops "" 0
issue admin1 admin "" 0
issue col1 collector "/L=d1" 0
issue col2 collector "/L=d2" 0
issue p384 collector "/L=d1" 0 P-384
issue dn1 node "/L=d1" 1
issue dn2 node "/L=d1" 1
issue dn3 node "/L=d1" 1
issue d2n1 node "/L=d2" 1
issue mkt1 marketing "" 0
issue dev1 device "/L=d1" 0
(cd other && issue fn1 node "/L=d1" 1)
openssl pkey -in col1.key -aes256 -passout pass:secret -out col1enc.key 2>/dev/null
