// `host:port` listen addresses as RoadRunner writes them: `127.0.0.1:8080`, `:8080` (all interfaces), `[::1]:8080`.

export function splitAddress(address: string): { host: string | undefined; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  return { host: host === '' ? undefined : host, port: Number(address.slice(i + 1)) };
}
