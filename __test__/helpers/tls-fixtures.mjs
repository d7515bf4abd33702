// The TLS fixtures (see fixtures/README.md): a self-signed certificate for
// localhost and 127.0.0.1, its key, and the same key encrypted.
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'

export const fixture = (name) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))
export const KEY = fixture('key.pem')
export const CERT = fixture('cert.pem')
export const ENCRYPTED_KEY = fixture('key-encrypted.pem')
export const PASSPHRASE = 'ferro-test-passphrase'
/** The certificate, to trust as a CA. */
export const ca = fs.readFileSync(CERT)
