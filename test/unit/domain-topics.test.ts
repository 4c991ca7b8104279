import { describe, expect, it } from 'vitest';
import { domainTopic } from '../../connectors/kafka/domain-topics.js';
import { ConfigError } from '../../lib/errors.js';

describe('domainTopic', () => {
  it("names a stream type's topic", () => {
    expect(domainTopic('cqrs', 'Order_Lines')).toBe('cqrs.events.Order_Lines');
    expect(domainTopic('cqrs', 'billing-v2.accounts')).toBe('cqrs.events.billing-v2.accounts');
  });

  it('refuses a stream type Kafka cannot name a topic after, with the name it could use', () => {
    expect(() => domainTopic('cqrs', 'Order Lines')).toThrow(ConfigError);
    expect(() => domainTopic('cqrs', 'Order Lines')).toThrow(
      /stream type "Order Lines" cannot name a Kafka topic/,
    );
    let refused: unknown;
    try {
      domainTopic('cqrs', 'prénom');
    } catch (err) {
      refused = err;
    }
    expect((refused as ConfigError).hint).toMatch(/e\.g\. "pr_nom"/);
    expect(() => domainTopic('cqrs', 'x'.repeat(240))).toThrow(ConfigError);
  });
});
