import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type AzuriteEndpoint, startAzurite } from '../../src/dev/azurite.js';
import { startFakeGcs } from '../../src/dev/fake-gcs.js';
import { selfSignedCertificate, startFtpServer } from '../../src/dev/ftp.js';
import type { DevLogger } from '../../src/dev/service.js';
import { type SftpEndpoint, startSshd } from '../../src/dev/sshd.js';

/** An FTP server of the suite: tests put files in `root` on disk, and the server serves it as `/`. */
export interface FtpEndpoint {
  host: string;
  port: number;
  username: string;
  password: string;
  root: string;
  /** FTPS only: the server's self-signed certificate (PEM), a connection's `tls_ca`. */
  certificate?: string;
}

/** The object stores' test parts, as test files get them with `inject('stores')`. */
export interface StoreEndpoints {
  azurite: AzuriteEndpoint;
  gcs: { endpoint: string };
  sftp: SftpEndpoint;
  ftp: FtpEndpoint;
  ftps: FtpEndpoint;
}

/**
 * Azurite, fake-gcs-server, OpenSSH's sshd (SFTP) and two pyftpdlib servers (FTP, and FTPS requiring
 * TLS) over one folder, started in parallel under `root`, each installed first if missing (sshd is a
 * system package: `sudo npm run setup:system` installs it). Every one is required: one that cannot
 * start fails the run, so no store's tests are quietly skipped.
 */
export async function startStoreServers(
  root: string,
  log: DevLogger,
): Promise<{ endpoints?: StoreEndpoints; stops: (() => Promise<void>)[]; failures: unknown[] }> {
  const ftpRoot = join(root, 'ftp');
  const ftpUser = { username: 'loader', password: 'ftp-test-password' };
  const cert = selfSignedCertificate(join(root, 'ftps-cert'));
  const started = await Promise.allSettled([
    startAzurite({ dataDir: join(root, 'azurite'), port: 0, log }),
    startFakeGcs({ dataDir: join(root, 'fake-gcs'), port: 0, log }),
    startSshd({ root: join(root, 'sftp'), dataDir: join(root, 'sshd'), port: 0, log }),
    startFtpServer({ root: ftpRoot, port: 0, log, ...ftpUser }),
    cert.then((tls) => startFtpServer({ root: ftpRoot, port: 0, log, tls, ...ftpUser })),
  ] as const);
  const [azurite, gcs, sftp, ftp, ftps] = started;
  const stops = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value.stop] : []));
  const failures = started.flatMap((s) => (s.status === 'rejected' ? [s.reason] : []));
  if (
    azurite.status === 'rejected' ||
    gcs.status === 'rejected' ||
    sftp.status === 'rejected' ||
    ftp.status === 'rejected' ||
    ftps.status === 'rejected'
  )
    return { stops, failures };
  const { accountUrl, accountName, accountKey } = azurite.value;
  const { stop: _stopSftp, ...sftpEndpoint } = sftp.value;
  return {
    stops,
    failures,
    endpoints: {
      azurite: { accountUrl, accountName, accountKey },
      gcs: { endpoint: gcs.value.endpoint },
      sftp: sftpEndpoint,
      ftp: { host: ftp.value.host, port: ftp.value.port, root: ftpRoot, ...ftpUser },
      ftps: {
        host: ftps.value.host,
        port: ftps.value.port,
        root: ftpRoot,
        ...ftpUser,
        certificate: await readFile((await cert).certFile, 'utf8'),
      },
    },
  };
}
