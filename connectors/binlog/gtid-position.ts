import { GtidSet, MariadbGtidPosition } from '@vlasky/zongji';

const MARIADB_GTID = /^(\d+)-(\d+)-(\d+)$/;

/**
 * The server's GTID position as the stream advances: seeded from the position the stream
 * started at and moved on by every transaction the stream sees (captured or not), so an offset
 * carries an exact "executed up to here" and not only the last captured transaction's id.
 * Unknown (null) when the start position was unknown.
 */
export class GtidPosition {
  private constructor(
    private readonly mariadb: MariadbGtidPosition | null,
    private readonly mysql: GtidSet | null,
  ) {}

  static start(flavor: 'mariadb' | 'mysql', text: string | null): GtidPosition {
    if (text === null) return new GtidPosition(null, null);
    return flavor === 'mariadb'
      ? new GtidPosition(MariadbGtidPosition.parse(text), null)
      : new GtidPosition(null, GtidSet.parse(text));
  }

  /** Records a transaction ('domain-server-seq' or 'uuid:gno') as executed. */
  commit(gtid: string | null): void {
    if (gtid === null) return;
    if (this.mariadb) {
      const m = MARIADB_GTID.exec(gtid);
      if (m) this.mariadb.add({ domainId: Number(m[1]), serverId: Number(m[2]), seqNo: m[3] as string });
    } else this.mysql?.add(gtid);
  }

  toString(): string | null {
    return (this.mariadb ?? this.mysql)?.toString() ?? null;
  }
}
