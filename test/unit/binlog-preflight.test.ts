import { describe, expect, it } from 'vitest';
import {
  binlogProblem,
  detectFlavor,
  missingPrivileges,
  type ServerSettings,
} from '../../connectors/binlog/preflight.js';
import { SourceError } from '../../lib/errors.js';

const ok: ServerSettings = {
  version: '10.11.19-MariaDB-log',
  flavor: 'mariadb',
  logBin: true,
  binlogFormat: 'ROW',
  binlogRowImage: 'FULL',
  privileges: ['SELECT', 'REPLICATION SLAVE', 'BINLOG MONITOR'],
  databaseExists: true,
  database: 'legacy_bank',
  user: "'cdc'@'%'",
};

describe('binlog preflight checks', () => {
  it('accepts a server with ROW format, FULL images and replication grants', () => {
    expect(binlogProblem(ok)).toBeNull();
    expect(binlogProblem({ ...ok, binlogFormat: 'row', binlogRowImage: 'full' })).toBeNull();
  });

  it('names a binlog that is off, with the my.cnf fix', () => {
    const err = binlogProblem({ ...ok, logBin: false });
    expect(err).toBeInstanceOf(SourceError);
    expect(err?.code).toBe('BINLOG_OFF');
    expect(err?.hint).toMatch(/log_bin=binlog/);
    expect(err?.hint).toMatch(/npm run legacy-db up/);
  });

  it('names the wrong binlog_format and row image with the SET GLOBAL fix', () => {
    const format = binlogProblem({ ...ok, binlogFormat: 'MIXED' });
    expect(format?.code).toBe('BINLOG_FORMAT');
    expect(format?.message).toMatch(/MIXED/);
    expect(format?.hint).toMatch(/SET GLOBAL binlog_format='ROW'/);
    const image = binlogProblem({ ...ok, binlogRowImage: 'MINIMAL' });
    expect(image?.code).toBe('BINLOG_ROW_IMAGE');
    expect(image?.hint).toMatch(/SET GLOBAL binlog_row_image='FULL'/);
  });

  it('reports the first problem only, binlog before grants', () => {
    expect(binlogProblem({ ...ok, logBin: false, privileges: [] })?.code).toBe('BINLOG_OFF');
  });

  it('lists the missing replication privileges and the GRANT that fixes them', () => {
    const err = binlogProblem({ ...ok, privileges: ['SELECT'] });
    expect(err?.code).toBe('MISSING_PRIVILEGES');
    expect(err?.hint).toBe("GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO 'cdc'@'%';");
    expect(missingPrivileges('mariadb', ['REPLICATION SLAVE', 'REPLICATION CLIENT'])).toEqual([]);
    expect(missingPrivileges('mariadb', ['replication slave', 'super'])).toEqual([]);
    expect(missingPrivileges('mysql', ['REPLICATION SLAVE', 'REPLICATION CLIENT'])).toEqual(['RELOAD']);
    expect(missingPrivileges('mysql', [])).toEqual(['REPLICATION SLAVE', 'REPLICATION CLIENT', 'RELOAD']);
  });

  it('names a missing database', () => {
    expect(binlogProblem({ ...ok, databaseExists: false })?.code).toBe('DATABASE_MISSING');
  });

  it('tells MariaDB from MySQL by VERSION()', () => {
    expect(detectFlavor('10.11.19-MariaDB-0+deb12u1-log')).toBe('mariadb');
    expect(detectFlavor('8.4.5')).toBe('mysql');
  });
});
