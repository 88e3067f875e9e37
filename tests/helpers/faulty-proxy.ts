import net from 'node:net';

/**
 * A TCP proxy in front of an HTTP server (MinIO) that misbehaves on chosen requests, the way a real
 * network or store does: it cuts a response part-way (a reset connection), or answers an S3 error of
 * its own (an object denied, archived). Everything else passes through untouched, byte for byte.
 */
export type Fault = { cutAfterBytes: number } | { status: number; s3Code: string };

export interface FaultyProxy {
  endpoint: string;
  /** Requests that met a fault so far. */
  faults(): number;
  close(): Promise<void>;
}

export async function startFaultyProxy(
  target: { host: string; port: number },
  faultFor: (method: string, path: string) => Fault | undefined,
): Promise<FaultyProxy> {
  let faults = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    let fault: Fault | undefined;
    let sent = 0;
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk) => {
      // A chunk starting with a request line begins the next request on this connection.
      const line = /^([A-Z]+) (\S+) HTTP\/1\.[01]\r\n/.exec(
        chunk.toString('latin1', 0, Math.min(chunk.length, 4096)),
      );
      if (line) {
        fault = faultFor(line[1]!, decodeURIComponent(line[2]!.split('?')[0]!));
        sent = 0;
        if (fault) faults++;
        if (fault && 'status' in fault) {
          const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fault.s3Code}</Code><Message>injected</Message></Error>`;
          client.write(
            `HTTP/1.1 ${fault.status} Injected\r\nContent-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
          );
          client.end();
          upstream.destroy();
          return;
        }
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (fault && 'cutAfterBytes' in fault) {
        const room = fault.cutAfterBytes - sent;
        if (room <= 0) return end();
        sent += chunk.length;
        client.write(room < chunk.length ? chunk.subarray(0, room) : chunk);
        if (sent >= fault.cutAfterBytes) end();
        return;
      }
      client.write(chunk);
    });
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', () => {
        sockets.delete(s);
        end();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    faults: () => faults,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
