import { describe, expect, it } from 'vitest';
import { answerValue, JsonText } from '../../definition/json-text.js';

type JsonTextModule = typeof import('../../definition/json-text.js');

describe('JsonText', () => {
  it('is recognised when another copy of its module built it (a definition loaded by tsx)', async () => {
    const specifier = '../../definition/json-text.js?another-copy';
    const copy = (await import(specifier)) as JsonTextModule;
    expect(copy.JsonText).not.toBe(JsonText);
    const text = copy.jsonText('{"accountId":7}');
    expect(text instanceof JsonText).toBe(true);
    expect(answerValue(text)).toEqual({ accountId: 7 });
    // A plain object with the same field is an answer like any other, not JSON text.
    const lookalike = { json: '{"accountId":7}' };
    expect(lookalike instanceof JsonText).toBe(false);
    expect(answerValue(lookalike)).toBe(lookalike);
  });
});
