import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../../bench/main.js';

describe('bench arguments', () => {
  it('parses a scenario with its options and defaults', () => {
    const args = parseBenchArgs([
      'reads',
      '--scale',
      'small',
      '--no-profile',
      '--cdc-paths',
      'embedded,debezium-kafka',
    ]);
    expect(args).toMatchObject({
      scenario: 'reads',
      scale: 'small',
      seed: 42,
      profile: false,
      embeddedOnly: false,
      cdcPaths: ['embedded', 'debezium-kafka'],
      out: 'bench/results',
    });
  });

  it('parses the CDC level options', () => {
    expect(
      parseBenchArgs([
        'cdc',
        '--cdc-rates',
        '300,300,1200',
        '--cdc-sec',
        '5',
        '--cdc-quiet-sec',
        '10',
        '--cdc-warmup-sec',
        '0',
      ]),
    ).toMatchObject({ cdcRates: [300, 300, 1200], cdcSec: 5, cdcQuietSec: 10, cdcWarmupSec: 0 });
    expect(() => parseBenchArgs(['cdc', '--cdc-warmup-sec', '-1'])).toThrow(/cdcWarmupSec/);
    expect(parseBenchArgs(['cdc'])).toMatchObject({ cdcRates: undefined, cdcSec: undefined });
    expect(() => parseBenchArgs(['cdc', '--cdc-rates', '300,fast'])).toThrow(/cdcRates/);
  });

  it('parses the replay budget', () => {
    expect(parseBenchArgs(['throughput', '--replay-sec', '900'])).toMatchObject({ replaySec: 900 });
    expect(parseBenchArgs(['throughput'])).toMatchObject({ replaySec: undefined });
    expect(() => parseBenchArgs(['throughput', '--replay-sec', '0'])).toThrow(/replaySec/);
  });

  it('refuses an unknown scenario, naming the valid ones', () => {
    expect(() => parseBenchArgs(['bogus'])).toThrow(/expected one of "throughput"\|"decode"/);
  });

  it('refuses an unknown option with the usage', () => {
    expect(() => parseBenchArgs(['reads', '--bogus'])).toThrow(/unknown option '--bogus'[\s\S]*Usage:/);
  });

  it('refuses a bad value', () => {
    expect(() => parseBenchArgs(['reads', '--scale', 'huge'])).toThrow(/scale/);
    expect(() => parseBenchArgs(['cdc', '--cdc-paths', 'carrier-pigeon'])).toThrow(/cdcPaths/);
  });
});
