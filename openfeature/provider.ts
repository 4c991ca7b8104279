import {
  ErrorCode,
  type EvaluationContext,
  type JsonValue,
  OpenFeatureEventEmitter,
  type Provider,
  ProviderEvents,
  type ResolutionDetails,
  StandardResolutionReasons,
} from '@openfeature/server-sdk';
import {
  decide,
  endpointKeySchema,
  type FlagDocument,
  flagDocumentSchema,
  resolveFlag,
} from '../shadow-api/flags.js';

export interface CqrsMigrateProviderOptions {
  /** The shadow API that owns the flags, e.g. http://127.0.0.1:8080 (its public GET /flags). */
  url: string;
  /** How often the flags are fetched again, ms. Default 5000. */
  refreshMs?: number;
  /** A request slower than this fails (the last flags stay in force), ms. Default 2000. */
  timeoutMs?: number;
}

/**
 * OpenFeature provider for a legacy application that moves its reads with cqrs-migrate: it
 * answers "read <domain>[.<endpoint>] from the new side for this subject?" with the very flags
 * the shadow API routes by, evaluated by the same pure function, so an application replica
 * and the API agree on every subject. Flag keys are `<domain>` or `<domain>.<endpoint>`; the
 * evaluation context's `targetingKey` (any string: an account id, a tenant, a user) is the
 * sticky canary subject. Boolean flags: true = read model. String flags: "read-model" or
 * "legacy". Flags are polled from the API; while it does not answer, the last flags stay in
 * force and the provider reports STALE.
 */
export class CqrsMigrateProvider implements Provider {
  readonly metadata = { name: 'cqrs-migrate' } as const;
  readonly runsOn = 'server' as const;
  readonly events = new OpenFeatureEventEmitter();
  private flags: FlagDocument | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stale = false;
  private readonly url: string;
  private readonly refreshMs: number;
  private readonly timeoutMs: number;

  constructor(options: CqrsMigrateProviderOptions) {
    this.url = `${options.url.replace(/\/$/, '')}/flags`;
    this.refreshMs = options.refreshMs ?? 5000;
    this.timeoutMs = options.timeoutMs ?? 2000;
  }

  /** The SDK waits for this before it reports READY; a failure leaves the provider in ERROR. */
  async initialize(): Promise<void> {
    this.flags = await this.fetchFlags();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  async onClose(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  async resolveBooleanEvaluation(
    flagKey: string,
    defaultValue: boolean,
    context: EvaluationContext,
  ): Promise<ResolutionDetails<boolean>> {
    return this.resolve(flagKey, defaultValue, context, (side) => side === 'readModel');
  }

  async resolveStringEvaluation(
    flagKey: string,
    defaultValue: string,
    context: EvaluationContext,
  ): Promise<ResolutionDetails<string>> {
    return this.resolve(flagKey, defaultValue, context, (side) =>
      side === 'readModel' ? 'read-model' : 'legacy',
    );
  }

  async resolveNumberEvaluation(_flagKey: string, defaultValue: number): Promise<ResolutionDetails<number>> {
    return mismatch(defaultValue, 'number');
  }

  async resolveObjectEvaluation<T extends JsonValue>(
    _flagKey: string,
    defaultValue: T,
  ): Promise<ResolutionDetails<T>> {
    return mismatch(defaultValue, 'object');
  }

  private resolve<T>(
    flagKey: string,
    defaultValue: T,
    context: EvaluationContext,
    answer: (side: 'legacy' | 'readModel') => T,
  ): ResolutionDetails<T> {
    if (this.flags === null) {
      return {
        value: defaultValue,
        reason: StandardResolutionReasons.ERROR,
        errorCode: ErrorCode.PROVIDER_NOT_READY,
      };
    }
    if (!endpointKeySchema.safeParse(flagKey).success) {
      return {
        value: defaultValue,
        reason: StandardResolutionReasons.ERROR,
        errorCode: ErrorCode.FLAG_NOT_FOUND,
        errorMessage: `"${flagKey}" is not a flag key: expected "<domain>" or "<domain>.<endpoint>"`,
      };
    }
    const flag = resolveFlag(this.flags, flagKey);
    const subject = context.targetingKey;
    if (flag.mode === 'canary' && (subject === undefined || subject === '')) {
      // Without a subject the canary slice cannot be sticky: serving legacy is the safe side.
      return {
        value: defaultValue,
        reason: StandardResolutionReasons.ERROR,
        errorCode: ErrorCode.TARGETING_KEY_MISSING,
        errorMessage: `${flagKey} is in canary: give the evaluation context a targetingKey (the subject)`,
      };
    }
    // Reverse comparison sampling is the API's business; the application only needs the side.
    const decision = decide(this.flags, flagKey, subject ?? '', 1);
    return {
      value: answer(decision.serveFrom),
      variant: flag.mode === 'canary' ? `canary ${flag.percent ?? 0}%` : flag.mode,
      reason: this.stale
        ? StandardResolutionReasons.STALE
        : flag.mode === 'canary'
          ? StandardResolutionReasons.SPLIT
          : StandardResolutionReasons.STATIC,
      flagMetadata: { mode: flag.mode },
    };
  }

  private async refresh(): Promise<void> {
    try {
      const next = await this.fetchFlags();
      const changed = JSON.stringify(next) !== JSON.stringify(this.flags);
      this.flags = next;
      if (this.stale) {
        this.stale = false;
        this.events.emit(ProviderEvents.Ready);
      }
      if (changed) this.events.emit(ProviderEvents.ConfigurationChanged, { message: 'flags changed' });
    } catch (err) {
      if (!this.stale) {
        this.stale = true;
        this.events.emit(ProviderEvents.Stale, { message: `flags unreachable: ${String(err)}` });
      }
    }
  }

  private async fetchFlags(): Promise<FlagDocument> {
    const response = await fetch(this.url, { signal: AbortSignal.timeout(this.timeoutMs) });
    if (!response.ok) throw new Error(`GET ${this.url} answered ${response.status}`);
    return flagDocumentSchema.parse(await response.json());
  }
}

function mismatch<T>(defaultValue: T, type: string): ResolutionDetails<T> {
  return {
    value: defaultValue,
    reason: StandardResolutionReasons.ERROR,
    errorCode: ErrorCode.TYPE_MISMATCH,
    errorMessage: `cqrs-migrate flags are boolean (read from the new side?) or string ("read-model" | "legacy"), not ${type}`,
  };
}
