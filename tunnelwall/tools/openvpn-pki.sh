#!/bin/sh
# A throw-away PKI for OpenVPN tests: CA, server and client EC certificates
# (P-256: quick to generate), valid for 2 days, in the current directory.
set -e
umask 077
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -days 2 -subj /CN=tunnelwall-ca -keyout ca.key -out ca.crt 2>/dev/null
for who in server client; do
  openssl req $ec -subj /CN=$who -keyout $who.key -out $who.csr 2>/dev/null
  if [ $who = server ]; then usage=serverAuth; else usage=clientAuth; fi
  printf 'extendedKeyUsage=%s\nkeyUsage=digitalSignature,keyAgreement\n' $usage > $who.ext
  openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile $who.ext -out $who.crt 2>/dev/null
done
