import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Paths of the key material a test control plane needs, all inside one directory. */
export interface ClusterCerts {
  /** CA that signs the API server's serving certificate (clients trust it). */
  servingCa: string;
  servingCert: string;
  servingKey: string;
  /** RSA key pair that signs and verifies service-account tokens. */
  saKey: string;
  saPub: string;
  /** CA that kube-apiserver trusts for client certificates. */
  clientCa: string;
  clientCaKey: string;
  /** admin client certificate: CN=admin, O=system:masters. */
  adminCert: string;
  adminKey: string;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(
      `openssl ${args.join(' ')} failed: ${stderr || (error as Error).message}` +
        ' (is openssl installed? apt-get install -y openssl)',
      { cause: error },
    );
  }
}

const DAYS = '3650';
// EC keys are created in a few milliseconds; the service-account key stays RSA because
// that is what every client and tutorial expects (RS256 tokens).
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export function makeCa(dir: string, name: string, cn: string): void {
  openssl(
    [
      'req',
      '-x509',
      ...EC_KEY,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      DAYS,
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ],
    dir,
  );
}

export function signLeaf(
  dir: string,
  opts: { name: string; ca: string; subject: string; extensions: string },
): void {
  const ext = `${opts.name}.ext`;
  writeFileSync(join(dir, ext), opts.extensions);
  openssl(
    [
      'req',
      '-new',
      ...EC_KEY,
      '-keyout',
      `${opts.name}.key`,
      '-out',
      `${opts.name}.csr`,
      '-subj',
      opts.subject,
    ],
    dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${opts.name}.csr`,
      '-CA',
      `${opts.ca}.crt`,
      '-CAkey',
      `${opts.ca}.key`,
      '-CAcreateserial',
      '-out',
      `${opts.name}.crt`,
      '-days',
      DAYS,
      '-extfile',
      ext,
    ],
    dir,
  );
}

/** X.509 extensions of a client certificate (the API server reads the user from its subject). */
export const CLIENT_CERT_EXTENSIONS = [
  'basicConstraints=CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=clientAuth',
  '',
].join('\n');

/** Creates all certificates in `dir` (which must exist). Takes well under a second. */
export function createCerts(dir: string): ClusterCerts {
  makeCa(dir, 'serving-ca', 'meson-test-serving-ca');
  makeCa(dir, 'client-ca', 'meson-test-client-ca');
  signLeaf(dir, {
    name: 'apiserver',
    ca: 'serving-ca',
    subject: '/CN=kube-apiserver',
    extensions: [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
      '',
    ].join('\n'),
  });
  signLeaf(dir, {
    name: 'admin',
    ca: 'client-ca',
    subject: '/O=system:masters/CN=admin',
    extensions: CLIENT_CERT_EXTENSIONS,
  });
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key'], dir);
  openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
  const p = (f: string): string => join(dir, f);
  return {
    servingCa: p('serving-ca.crt'),
    servingCert: p('apiserver.crt'),
    servingKey: p('apiserver.key'),
    saKey: p('sa.key'),
    saPub: p('sa.pub'),
    clientCa: p('client-ca.crt'),
    clientCaKey: p('client-ca.key'),
    adminCert: p('admin.crt'),
    adminKey: p('admin.key'),
  };
}

/** An admin kubeconfig with the certificates embedded, so it can be copied anywhere. */
export function adminKubeconfig(certs: ClusterCerts, server: string): string {
  const b64 = (path: string): string => readFileSync(path).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: meson-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(certs.servingCa)}`,
    'users:',
    '- name: admin',
    '  user:',
    `    client-certificate-data: ${b64(certs.adminCert)}`,
    `    client-key-data: ${b64(certs.adminKey)}`,
    'contexts:',
    '- name: meson-test',
    '  context:',
    '    cluster: meson-test',
    '    user: admin',
    '    namespace: default',
    'current-context: meson-test',
    '',
  ].join('\n');
}
