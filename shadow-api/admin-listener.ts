import type { Config } from '../lib/config.js';

/**
 * Where the admin surface (/admin/*, the dashboard, /metrics) listens: on its own socket by
 * default, so the reads can be opened to every client while flag changes stay on loopback (or
 * on an interface only operators reach); on the public port only when the config asks for it.
 */
export interface AdminPlacement {
  /** True: its own listener at host:port. False: beside the reads, on api.host:api.port. */
  separate: boolean;
  host: string;
  port: number;
}

export function adminPlacementOf(api: Pick<Config['api'], 'host' | 'port' | 'admin'>): AdminPlacement {
  return api.admin.port === 'public'
    ? { separate: false, host: api.host, port: api.port }
    : { separate: true, host: api.admin.host, port: api.admin.port };
}
