import mysql, { type Pool, type PoolConnection } from 'mysql2/promise';
import { z } from 'zod';
import { AdapterError, ProgressMeter } from '../../index.js';
import {
  formatDate,
  formatDatetime6,
  formatMoney,
  MICROS_PER_DAY,
  MICROS_PER_SECOND,
  Random,
  WeightedChoice,
} from './random.js';

/**
 * Deterministic data for the sample legacy bank. The same seed and scale give byte-identical
 * tables (ids included), so two runs can be compared by checksum. A pure model walks a fixed
 * timeline — onboarding year, activity year, closing day — and emits SQL value tuples; a bulk
 * loader ships them as multi-row INSERTs on one connection while the model keeps generating.
 *
 * Invariants the rest of the project relies on:
 *  - balances.available = balances.ledger = signed sum of the account's transactions
 *    (the opening deposit is a credit posting);
 *  - transactions.balance_after is the running balance in (posted_at, id) order, and ids
 *    grow with posted_at, so both orders agree;
 *  - no posting takes an account below zero.
 */

export const BANK_TABLES = [
  'currencies',
  'branches',
  'categories',
  'merchants',
  'products',
  'customers',
  'accounts',
  'balances',
  'cards',
  'loans',
  'transfers',
  'payments',
  'transactions',
] as const;
export type BankTable = (typeof BANK_TABLES)[number];

export const bankScaleSchema = z.object({
  customers: z.number().int().min(1),
  /** Average; every customer has at least one account. */
  accountsPerCustomer: z.number().min(1).max(6),
  /** Average ledger rows per account, the opening deposit included. */
  transactionsPerAccount: z.number().min(1),
  merchants: z.number().int().min(1),
  branches: z.number().int().min(1),
  /** Fraction of customers that take a loan. */
  loanRate: z.number().min(0).max(1),
});
export type BankScale = z.infer<typeof bankScaleSchema>;

export const SCALE_PRESETS = {
  tiny: {
    customers: 50,
    accountsPerCustomer: 1.6,
    transactionsPerAccount: 25,
    merchants: 30,
    branches: 4,
    loanRate: 0.16,
  },
  small: {
    customers: 2_000,
    accountsPerCustomer: 1.5,
    transactionsPerAccount: 20,
    merchants: 300,
    branches: 10,
    loanRate: 0.12,
  },
  bench: {
    customers: 100_000,
    accountsPerCustomer: 2,
    transactionsPerAccount: 25,
    merchants: 5_000,
    branches: 50,
    loanRate: 0.1,
  },
} as const satisfies Record<string, BankScale>;
export type ScaleName = keyof typeof SCALE_PRESETS;

/** Explicit numbers: only `customers` is required, the rest follow the `small` shape. */
const explicitScaleSchema = bankScaleSchema.partial().required({ customers: true });

/**
 * The shape of account histories when `history` is 'skewed': the case study's bank, where most
 * accounts are small and a few carry enough postings to make aggregate screens slow.
 */
export const skewSchema = z.object({
  /** Share of accounts with a long activity-year history (at least one when above 0). */
  heavyShare: z.number().min(0).max(0.5).default(0.01),
  /** Activity-year postings of each heavy account, drawn log-uniformly in [min, max] (approximate). */
  heavyPostings: z
    .object({ min: z.number().int().min(1), max: z.number().int().min(1) })
    .refine((r) => r.min <= r.max, 'min must not exceed max')
    .default({ min: 10_000, max: 100_000 }),
  /** Heavy accounts opened years earlier, with a posting every day since. */
  veterans: z.number().int().min(0).default(3),
  veteranYears: z.number().int().min(1).max(20).default(5),
  /** Days before the end of the activity year whose card payments and transfers may still be pending. */
  pendingDays: z.number().int().min(0).max(90).default(5),
});
export type SkewOptions = z.input<typeof skewSchema>;
export type Skew = z.output<typeof skewSchema>;

export const historyShapeSchema = z.enum(['uniform', 'skewed']);
export type HistoryShape = z.infer<typeof historyShapeSchema>;

export const generateOptionsSchema = z.object({
  seed: z.union([z.number().int(), z.string().min(1)]),
  scale: z.union([z.enum(['tiny', 'small', 'bench']), explicitScaleSchema]),
  /**
   * 'uniform' (default, what every seed produced before): every account ~transactionsPerAccount
   * postings. 'skewed': the same bank plus heavy and veteran accounts and still-pending card
   * authorisations and transfers at the end (see skewSchema).
   */
  history: historyShapeSchema.default('uniform'),
  skew: skewSchema.prefault({}),
  /** Rows per INSERT statement. */
  chunkRows: z.number().int().min(1).max(50_000).default(4_000),
  /**
   * Load without writing the binlog (SET sql_log_bin=0): faster, for benchmarks that start
   * CDC with a snapshot anyway. Needs the SUPER/BINLOG ADMIN privilege.
   */
  skipBinlog: z.boolean().default(false),
  /** Loader connections taken from the pool; statements are spread over them. */
  connections: z.number().int().min(1).max(8).default(2),
});
export type GenerateOptions = z.input<typeof generateOptionsSchema>;

export function resolveScale(scale: GenerateOptions['scale']): BankScale {
  if (typeof scale === 'string') return SCALE_PRESETS[scale];
  const base = SCALE_PRESETS.small;
  const c = scale.customers;
  return bankScaleSchema.parse({
    customers: c,
    accountsPerCustomer: scale.accountsPerCustomer ?? base.accountsPerCustomer,
    transactionsPerAccount: scale.transactionsPerAccount ?? base.transactionsPerAccount,
    merchants: scale.merchants ?? Math.max(10, Math.round(c / 7)),
    branches: scale.branches ?? Math.min(50, Math.max(2, Math.ceil(c / 200))),
    loanRate: scale.loanRate ?? base.loanRate,
  });
}

export interface GenerateProgress {
  table: BankTable;
  /** Rows of `table` written so far. */
  rows: number;
  /** Expected rows of `table` (an estimate for the activity tables). */
  total: number;
  /** All tables together, since the start. */
  rowsPerSec: number;
  /** Time left for the whole load, from the overall estimate. */
  etaSec: number | null;
}

export interface GenerateResult {
  tables: Record<BankTable, number>;
  rows: number;
  elapsedMs: number;
  rowsPerSec: number;
}

// ---------------------------------------------------------------------------------------
// Timeline: customers and accounts appear during the onboarding year, card payments,
// transfers and loans happen during the activity year, closures on the day after.

const EPOCH_MICROS = Date.UTC(2022, 0, 1) * 1000;
const ONBOARDING_MICROS = 365 * MICROS_PER_DAY;
const ACTIVITY_START = EPOCH_MICROS + ONBOARDING_MICROS;
const ACTIVITY_MICROS = 365 * MICROS_PER_DAY;
const CLOSING_START = ACTIVITY_START + ACTIVITY_MICROS + MICROS_PER_DAY;
const FREEZE_START = CLOSING_START + MICROS_PER_DAY;
/** The end of the generated activity year (DATETIME(6)): closures and live writes come after it. */
export const ACTIVITY_END = formatDatetime6(ACTIVITY_START + ACTIVITY_MICROS);

// ---------------------------------------------------------------------------------------
// Reference data. Only plain ASCII letters, digits, spaces, '-', '.' and '&': values are
// still escaped on the way out, this just keeps the data tidy.

const CURRENCIES = [
  { code: 'EUR', name: 'Euro', weight: 55 },
  { code: 'USD', name: 'US Dollar', weight: 20 },
  { code: 'GBP', name: 'Pound Sterling', weight: 12 },
  { code: 'CHF', name: 'Swiss Franc', weight: 8 },
  { code: 'SEK', name: 'Swedish Krona', weight: 5 },
] as const;

const PRODUCT_KINDS = [
  { kind: 'checking', code: 'CHK', name: 'Everyday Checking', rateBp: 0 },
  { kind: 'savings', code: 'SAV', name: 'Flexible Savings', rateBp: 275 },
  { kind: 'credit', code: 'CRD', name: 'Classic Credit', rateBp: 1899 },
] as const;
type KindIndex = 0 | 1 | 2;
const CHECKING: KindIndex = 0;
const SAVINGS: KindIndex = 1;
const CREDIT: KindIndex = 2;

const CITIES = [
  ['Berlin', 'DE'],
  ['Munich', 'DE'],
  ['Hamburg', 'DE'],
  ['Paris', 'FR'],
  ['Lyon', 'FR'],
  ['Madrid', 'ES'],
  ['Barcelona', 'ES'],
  ['Rome', 'IT'],
  ['Milan', 'IT'],
  ['Amsterdam', 'NL'],
  ['Vienna', 'AT'],
  ['Zurich', 'CH'],
  ['London', 'GB'],
  ['Manchester', 'GB'],
  ['Dublin', 'IE'],
  ['Stockholm', 'SE'],
  ['New York', 'US'],
  ['Boston', 'US'],
  ['Chicago', 'US'],
  ['Lisbon', 'PT'],
] as const;

const FIRST_NAMES =
  'Anna Ben Clara David Elena Felix Greta Hugo Ida Jonas Karin Lukas Mia Noah Olga Paul Quinn Rosa Sven Tara Umar Vera Walter Xenia Yusuf Zoe Amir Bianca Carlos Dana Emil Fatima Georg Hanna Ivan Julia Kai Lena Marco Nina Oscar Petra Rafael Sofia Tom Ulla Victor Wanda Yara Zeno'.split(
    ' ',
  );

const LAST_NAMES =
  'Schmidt Muller Weber Fischer Meyer Wagner Becker Hoffmann Koch Richter Martin Bernard Dubois Moreau Laurent Garcia Lopez Martinez Rossi Russo Bianchi Romano Jansen DeVries Bakker Smith Jones Taylor Brown Wilson Evans Walsh Murphy Kelly Johansson Lindberg Nilsson Silva Santos Costa Novak Horvat Kowalski Nowak Popescu Ionescu Nagy Papadopoulos Yilmaz Khan'.split(
    ' ',
  );

const EMAIL_DOMAINS = ['example.com', 'example.org', 'example.net', 'mail.example', 'post.example'];

/** Top-level categories with their sub-categories and a representative MCC. */
const CATEGORY_TREE = [
  {
    code: 'FOOD',
    name: 'Food & Drink',
    mcc: 5400,
    children: ['Groceries', 'Restaurants', 'Coffee Shops', 'Bakeries'],
  },
  {
    code: 'SHOP',
    name: 'Shopping',
    mcc: 5300,
    children: ['Clothing', 'Electronics', 'Books', 'Home & Garden'],
  },
  { code: 'TRVL', name: 'Travel', mcc: 4500, children: ['Airlines', 'Hotels', 'Car Rental'] },
  { code: 'TRNS', name: 'Transport', mcc: 4100, children: ['Public Transport', 'Fuel', 'Taxis'] },
  { code: 'UTIL', name: 'Utilities', mcc: 4900, children: ['Electricity', 'Telecom', 'Water'] },
  { code: 'ENTM', name: 'Entertainment', mcc: 7800, children: ['Cinema', 'Streaming', 'Concerts'] },
  { code: 'HLTH', name: 'Health', mcc: 8000, children: ['Pharmacy', 'Doctors', 'Fitness'] },
  { code: 'SERV', name: 'Services', mcc: 7200, children: ['Insurance', 'Education', 'Repairs'] },
] as const;

const MERCHANT_WORDS =
  'Blue Golden Green Urban Royal North Sunny Silver Happy Prime Corner Central Metro Alpine Harbor River Oak Star City Coastal'.split(
    ' ',
  );
const MERCHANT_SUFFIXES = 'Store Market Co Shop House Express Group Hub Point Depot'.split(' ');
const EMPLOYERS = ['Acme Corp', 'Globex', 'Initech', 'Umbrella Ltd', 'Stark Industries', 'Wayne Enterprises'];

// ---------------------------------------------------------------------------------------
// SQL value helpers. mysql2's escape quotes and escapes a string literal.

const q = (s: string): string => mysql.escape(s);
const qOrNull = (n: number | undefined): string => (n !== undefined && n > 0 ? String(n) : 'NULL');

function rateText(basisPoints: number): string {
  // DECIMAL(7,4) percentage: 1899 → "18.9900".
  const units = Math.floor(basisPoints / 100);
  const rest = basisPoints % 100;
  return `${units}.${rest < 10 ? '0' : ''}${rest}00`;
}

/** IBAN-like, unique per id and stable: "GB42LGCY00000000012345". */
export function accountNumberFor(id: number): string {
  const check = 98 - ((id * 7 + 11) % 97);
  return `GB${check < 10 ? '0' : ''}${check}LGCY${String(id).padStart(14, '0')}`;
}

/** Cents in [min, max), most of them small, as card payments are. */
function skewedCents(rng: Random, min: number, max: number): number {
  const r = rng.next();
  return min + Math.floor(r * r * (max - min));
}

// ---------------------------------------------------------------------------------------

const cols = (names: string): readonly string[] => names.split(' ');

export const TABLE_COLUMNS: Record<BankTable, readonly string[]> = {
  currencies: cols('code name minor_units'),
  branches: cols('id code name city opened_on'),
  categories: cols('id code name parent_id'),
  merchants: cols('id name category_id mcc city country'),
  products: cols('id code name kind interest_rate currency_code'),
  customers: cols(
    'id first_name last_name email phone birth_date branch_id kyc_status created_at updated_at',
  ),
  accounts: cols(
    'id account_number customer_id product_id branch_id currency_code status opened_at closed_at updated_at',
  ),
  balances: cols('account_id available ledger updated_at'),
  cards: cols('id account_id masked_pan card_type status expires_on issued_at updated_at'),
  loans: cols(
    'id customer_id account_id principal outstanding interest_rate status opened_at maturity_date updated_at',
  ),
  transfers: cols(
    'id from_account_id to_account_id amount currency_code status reference created_at completed_at',
  ),
  payments: cols('id account_id card_id merchant_id amount status created_at'),
  transactions: cols(
    'id account_id direction amount currency_code balance_after description merchant_id transfer_id payment_id posted_at',
  ),
};

/** Receives one SQL value tuple "(…)" per generated row. */
export interface RowSink {
  row(table: BankTable, tuple: string): void;
}

/** Expected row counts, for progress totals; the activity tables are estimates. */
export function estimateRows(scale: BankScale, extraLedger = 0): Record<BankTable, number> {
  const accounts = Math.round(scale.customers * scale.accountsPerCustomer);
  const ledger = Math.round(accounts * scale.transactionsPerAccount) + extraLedger;
  const events = Math.max(0, ledger - accounts) / ROWS_PER_EVENT;
  return {
    currencies: CURRENCIES.length,
    branches: scale.branches,
    categories: CATEGORY_TREE.reduce((n, c) => n + 1 + c.children.length, 0),
    merchants: scale.merchants,
    products: CURRENCIES.length * PRODUCT_KINDS.length,
    customers: scale.customers,
    accounts,
    balances: accounts,
    cards: Math.round(accounts * 0.93),
    loans: Math.round(scale.customers * scale.loanRate),
    transfers: Math.round((events * EVENT_WEIGHTS.transfer) / EVENT_WEIGHT_TOTAL),
    payments: Math.round((events * EVENT_WEIGHTS.payment) / EVENT_WEIGHT_TOTAL),
    transactions: ledger,
  };
}

const EVENT_WEIGHTS = {
  payment: 46,
  transfer: 22,
  salary: 6,
  deposit: 6,
  atm: 12,
  fee: 5,
  interest: 3,
} as const;
type EventKind = keyof typeof EVENT_WEIGHTS;
const EVENT_WEIGHT_TOTAL = Object.values(EVENT_WEIGHTS).reduce((a, b) => a + b, 0);
/** Ledger rows per activity event on average (transfers post twice, some events post nothing). */
const ROWS_PER_EVENT = 1.2;

interface LoanState {
  id: number;
  customerId: number;
  accountId: number;
  principal: number;
  outstanding: number;
  installment: number;
  rateBp: number;
  openedAt: number;
  months: number;
  updatedAt: number;
}

/** Which accounts a skewed bank makes heavy, and how heavy. */
class SkewPlan {
  /** Heavy account ids, and the running sum of their targets (for a weighted pick). */
  readonly heavy: number[] = [];
  private readonly cumulative: number[] = [];
  readonly heavyTotal: number;
  readonly veterans: Set<number>;
  readonly veteranPostings: number;

  constructor(
    rng: Random,
    accounts: number,
    readonly skew: Skew,
  ) {
    const count = skew.heavyShare > 0 ? Math.max(1, Math.round(accounts * skew.heavyShare)) : 0;
    const chosen = new Set<number>();
    while (chosen.size < Math.min(count, accounts)) chosen.add(rng.int(1, accounts));
    let total = 0;
    const { min, max } = skew.heavyPostings;
    for (const id of chosen) {
      this.heavy.push(id);
      total += Math.round(min * (max / min) ** rng.next());
      this.cumulative.push(total);
    }
    this.heavyTotal = total;
    this.veterans = new Set(this.heavy.slice(0, skew.veterans));
    this.veteranPostings = this.veterans.size * skew.veteranYears * 365;
  }

  /** A heavy account, each as likely as its target share. */
  pick(rng: Random): number {
    const x = rng.next() * this.heavyTotal;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.cumulative[mid] as number) > x) hi = mid;
      else lo = mid + 1;
    }
    return this.heavy[lo] as number;
  }
}

interface PostingRefs {
  merchantId?: number;
  transferId?: number;
  paymentId?: number;
}

const KYC_CHOICE = new WeightedChoice([
  ['verified', 88],
  ['pending', 9],
  ['rejected', 3],
] as const);
const EXTRA_KIND_CHOICE = new WeightedChoice<KindIndex>([
  [CHECKING, 30],
  [SAVINGS, 45],
  [CREDIT, 25],
]);
const ACCOUNT_STATUS_CHOICE = new WeightedChoice([
  ['active', 96.5],
  ['frozen', 2],
  ['closed', 1.5],
] as const);
const CARD_STATUS_CHOICE = new WeightedChoice([
  ['active', 80],
  ['blocked', 6],
  ['expired', 9],
  ['lost', 5],
] as const);
const CURRENCY_CHOICE = new WeightedChoice(CURRENCIES.map((c, i) => [i, c.weight] as const));
const EVENT_CHOICE = new WeightedChoice(Object.entries(EVENT_WEIGHTS) as [EventKind, number][]);

/**
 * The bank's state while it is generated: per-account running balances and lookups in
 * typed arrays (the bench scale has 200k accounts), counters that become the ids. Each
 * phase draws from its own forked stream, so the phases do not shift one another.
 */
class BankModel {
  private readonly root: Random;
  private readonly customers: number;
  private readonly accounts: number;
  private readonly balance: Float64Array; // integer cents; a float64 holds them exactly
  private readonly lastPosted: Float64Array;
  private readonly currencyOf: Uint8Array;
  private readonly kindOf: Uint8Array;
  private readonly activeCardOf: Int32Array;
  private readonly closedAt: Float64Array; // 0 = stays open
  private readonly firstAccountOf: Int32Array;
  private readonly byCurrency: number[][] = CURRENCIES.map(() => []);
  private readonly merchantNames: string[] = [''];
  private readonly loans: LoanState[] = [];
  private txId = 0;
  private cardId = 0;
  private readonly ids = { transfer: 0, payment: 0 };
  private readonly skew: SkewPlan | null;
  /** When the activity clock stopped: pending items come after it. */
  private activityEnd = ACTIVITY_START;

  constructor(
    seed: number | string,
    private readonly scale: BankScale,
    private readonly sink: RowSink,
    shape: { history: HistoryShape; skew: Skew } = { history: 'uniform', skew: skewSchema.parse({}) },
  ) {
    this.root = new Random(`bank:${seed}`);
    this.customers = scale.customers;
    this.accounts = estimateRows(scale).accounts;
    // Forked only for skewed banks, so a uniform bank's streams stay what they always were.
    this.skew =
      shape.history === 'skewed' ? new SkewPlan(this.root.fork('skew'), this.accounts, shape.skew) : null;
    const n = this.accounts + 1;
    this.balance = new Float64Array(n);
    this.lastPosted = new Float64Array(n);
    this.currencyOf = new Uint8Array(n);
    this.kindOf = new Uint8Array(n);
    this.activeCardOf = new Int32Array(n);
    this.closedAt = new Float64Array(n);
    this.firstAccountOf = new Int32Array(this.customers + 1);
  }

  *rows(): Generator<void, void, void> {
    this.referenceData();
    yield;
    yield* this.onboarding();
    yield* this.activity(this.estimate());
    if (this.skew !== null) this.pending(this.skew.skew.pendingDays);
    this.closures();
    yield* this.finalStates();
  }

  /** Expected rows, the skewed bank's extra postings included. */
  estimate(): Record<BankTable, number> {
    return estimateRows(
      this.scale,
      this.skew === null ? 0 : this.skew.heavyTotal + this.skew.veteranPostings,
    );
  }

  private post(
    account: number,
    direction: 'debit' | 'credit',
    cents: number,
    description: string,
    at: number,
    refs: PostingRefs = {},
  ): void {
    const after = (this.balance[account] as number) + (direction === 'credit' ? cents : -cents);
    this.balance[account] = after;
    this.lastPosted[account] = at;
    const id = ++this.txId;
    const currency = CURRENCIES[this.currencyOf[account] as number]?.code;
    this.sink.row(
      'transactions',
      `(${id},${account},'${direction}','${formatMoney(cents)}','${currency}','${formatMoney(after)}',${q(description)},${qOrNull(refs.merchantId)},${qOrNull(refs.transferId)},${qOrNull(refs.paymentId)},'${formatDatetime6(at)}')`,
    );
  }

  private referenceData(): void {
    const { sink, scale } = this;
    const rng = this.root.fork('reference');
    for (const c of CURRENCIES) sink.row('currencies', `(${q(c.code)},${q(c.name)},2)`);

    for (let b = 1; b <= scale.branches; b++) {
      const [city] = CITIES[(b - 1) % CITIES.length] as readonly [string, string];
      const openedOn = formatDate(EPOCH_MICROS - rng.int(365, 20 * 365) * MICROS_PER_DAY);
      const suffix = b > CITIES.length ? ` ${Math.ceil(b / CITIES.length)}` : '';
      const code = `BR${String(b).padStart(4, '0')}`;
      sink.row('branches', `(${b},${q(code)},${q(`${city} Branch${suffix}`)},${q(city)},'${openedOn}')`);
    }

    let categoryId = 0;
    const leaves: { id: number; mcc: number; name: string }[] = [];
    const tops: { id: number; mcc: number; name: string }[] = [];
    for (const top of CATEGORY_TREE) {
      const parentId = ++categoryId;
      sink.row('categories', `(${parentId},${q(top.code)},${q(top.name)},NULL)`);
      tops.push({ id: parentId, mcc: top.mcc, name: top.name });
      top.children.forEach((child, i) => {
        const id = ++categoryId;
        const code = `${top.code}_${child.toUpperCase().replace(/[^A-Z]+/g, '_')}`;
        sink.row('categories', `(${id},${q(code)},${q(child)},${parentId})`);
        leaves.push({ id, mcc: top.mcc + 10 * (i + 1), name: child });
      });
    }

    for (let m = 1; m <= scale.merchants; m++) {
      // Some merchants sit directly under a top-level category, most under a leaf.
      const category = rng.chance(0.1) ? rng.pick(tops) : rng.pick(leaves);
      const [city, country] = rng.pick(CITIES);
      const name = `${rng.pick(MERCHANT_WORDS)} ${category.name.split(' ')[0]} ${rng.pick(MERCHANT_SUFFIXES)}`;
      this.merchantNames.push(name);
      const mcc = String(category.mcc + rng.int(0, 9)).padStart(4, '0');
      sink.row('merchants', `(${m},${q(name)},${category.id},'${mcc}',${q(city)},'${country}')`);
    }

    // One product per currency and kind: id = currency index * 3 + kind index + 1.
    CURRENCIES.forEach((c, ci) => {
      PRODUCT_KINDS.forEach((p, ki) => {
        const id = ci * PRODUCT_KINDS.length + ki + 1;
        sink.row(
          'products',
          `(${id},${q(`${p.code}-${c.code}`)},${q(`${p.name} ${c.code}`)},'${p.kind}','${rateText(p.rateBp)}','${c.code}')`,
        );
      });
    });
  }

  /** Accounts per customer: one each, the rest spread at random (at most five). */
  private accountCounts(): Uint8Array {
    const rng = this.root.fork('account-counts');
    const counts = new Uint8Array(this.customers + 1).fill(1);
    for (let extra = this.accounts - this.customers; extra > 0; ) {
      const c = rng.int(1, this.customers);
      if ((counts[c] as number) < 5) {
        counts[c] = (counts[c] as number) + 1;
        extra--;
      }
    }
    return counts;
  }

  /**
   * Customers join on an even grid over the onboarding year and open their accounts right
   * after, so customer, account, card and opening-posting ids all grow with time.
   */
  private *onboarding(): Generator<void, void, void> {
    const { sink, scale } = this;
    const counts = this.accountCounts();
    const custRng = this.root.fork('customers');
    const acctRng = this.root.fork('accounts');
    const cardRng = this.root.fork('cards');
    const custStep = ONBOARDING_MICROS / this.customers;
    let accountId = 0;

    for (let c = 1; c <= this.customers; c++) {
      const created =
        EPOCH_MICROS + Math.floor((c - 1) * custStep) + custRng.int(0, Math.floor(custStep / 4));
      const first = custRng.pick(FIRST_NAMES);
      const last = custRng.pick(LAST_NAMES);
      // The id in the address keeps emails unique without a lookup.
      const email = `${first}.${last}${c}@${custRng.pick(EMAIL_DOMAINS)}`.toLowerCase();
      const phone = custRng.chance(0.85)
        ? `'+${custRng.int(30, 49)} ${custRng.int(100, 999)} ${custRng.int(1_000_000, 9_999_999)}'`
        : 'NULL';
      const birth = formatDate(EPOCH_MICROS - custRng.int(18 * 365, 85 * 365) * MICROS_PER_DAY);
      const branchId = custRng.int(1, scale.branches);
      const updated = custRng.chance(0.3) ? created + custRng.int(1, 600) * MICROS_PER_DAY : created;
      sink.row(
        'customers',
        `(${c},${q(first)},${q(last)},${q(email)},${phone},'${birth}',${branchId},'${KYC_CHOICE.pick(custRng)}','${formatDatetime6(created)}','${formatDatetime6(updated)}')`,
      );

      const homeCurrency = CURRENCY_CHOICE.pick(acctRng);
      const n = counts[c] as number;
      // All of a customer's accounts open within a quarter step, before the next customer joins.
      const gapMax = Math.max(1, Math.floor(custStep / (4 * (n + 1))));
      let openedAt = created;
      for (let j = 0; j < n; j++) {
        const id = ++accountId;
        if (j === 0) this.firstAccountOf[c] = id;
        openedAt += acctRng.int(1, gapMax);
        const kind: KindIndex =
          j === 0 ? (acctRng.chance(0.9) ? CHECKING : SAVINGS) : EXTRA_KIND_CHOICE.pick(acctRng);
        const currency = j === 0 || acctRng.chance(0.7) ? homeCurrency : CURRENCY_CHOICE.pick(acctRng);
        const branch = acctRng.chance(0.9) ? branchId : acctRng.int(1, scale.branches);
        const veteran = this.skew?.veterans.has(id) === true;
        const opened = veteran ? this.veteranOpening(id) : openedAt;
        this.openAccount(acctRng, id, c, kind, currency, branch, opened);
        this.issueCards(cardRng, id, kind, opened);
        if (veteran) this.veteranHistory(id, opened);
      }
      if (c % 256 === 0) yield;
    }
  }

  /** A veteran opened `veteranYears` before the activity year, at an hour fixed by its id. */
  private veteranOpening(id: number): number {
    const years = this.skew?.skew.veteranYears ?? 0;
    return ACTIVITY_START - years * 365 * MICROS_PER_DAY - MICROS_PER_DAY + (id % 3600) * MICROS_PER_SECOND;
  }

  /**
   * A posting every day from the day after opening until the activity year: a salary on the
   * first of the month, card payments at merchants otherwise. Emitted at opening, so the
   * account's ids grow with its posted_at like every other account's.
   */
  private veteranHistory(account: number, openedAt: number): void {
    const rng = this.root.fork(`veteran:${account}`);
    const firstDay = Math.floor(openedAt / MICROS_PER_DAY) + 1;
    const lastDay = Math.floor(ACTIVITY_START / MICROS_PER_DAY) - 1;
    for (let day = firstDay; day <= lastDay; day++) {
      const at = day * MICROS_PER_DAY + rng.int(7 * 3600, 21 * 3600) * MICROS_PER_SECOND;
      if (new Date(at / 1000).getUTCDate() === 1 || (this.balance[account] as number) < 30_000) {
        this.post(account, 'credit', rng.int(1_500, 6_000) * 100, `Salary ${rng.pick(EMPLOYERS)}`, at);
        continue;
      }
      const merchantId = rng.int(1, this.scale.merchants);
      const amount = skewedCents(rng, 150, 30_000);
      const card = this.activeCardOf[account] as number;
      const id = ++this.ids.payment;
      this.sink.row(
        'payments',
        `(${id},${account},${qOrNull(card)},${merchantId},'${formatMoney(amount)}','captured','${formatDatetime6(at)}')`,
      );
      const how = card > 0 ? 'POS' : 'Direct debit';
      this.post(account, 'debit', amount, `${how} ${this.merchantNames[merchantId]}`, at, {
        merchantId,
        paymentId: id,
      });
    }
  }

  private openAccount(
    rng: Random,
    id: number,
    customerId: number,
    kind: KindIndex,
    currency: number,
    branchId: number,
    openedAt: number,
  ): void {
    this.currencyOf[id] = currency;
    this.kindOf[id] = kind;
    this.byCurrency[currency]?.push(id);
    const productId = currency * PRODUCT_KINDS.length + kind + 1;
    const status = ACCOUNT_STATUS_CHOICE.pick(rng);
    // Closures and freezes happen after the activity year at a time fixed by the id, so the
    // account row can be written now and the closing payout posted later.
    let closed = 'NULL';
    let updatedAt = openedAt;
    if (status === 'closed') {
      this.closedAt[id] = CLOSING_START + id;
      closed = `'${formatDatetime6(CLOSING_START + id)}'`;
      updatedAt = CLOSING_START + id;
    } else if (status === 'frozen') {
      updatedAt = FREEZE_START + id;
    }
    this.sink.row(
      'accounts',
      `(${id},'${accountNumberFor(id)}',${customerId},${productId},${branchId},'${CURRENCIES[currency]?.code}','${status}','${formatDatetime6(openedAt)}',${closed},'${formatDatetime6(updatedAt)}')`,
    );
    const opening =
      kind === SAVINGS
        ? rng.cents(50_000, 2_000_000)
        : kind === CREDIT
          ? rng.cents(1_000, 100_000)
          : rng.cents(10_000, 500_000);
    this.post(id, 'credit', opening, 'Opening deposit', openedAt);
  }

  /** Checking gets a debit card (sometimes a virtual one too), credit a credit card, savings rarely one. */
  private issueCards(rng: Random, accountId: number, kind: KindIndex, openedAt: number): void {
    const types: ('debit' | 'credit' | 'virtual')[] = [];
    if (kind === CHECKING) {
      if (rng.chance(0.95)) types.push('debit');
      if (rng.chance(0.25)) types.push('virtual');
    } else if (kind === CREDIT) {
      types.push('credit');
    } else if (rng.chance(0.1)) {
      types.push('debit');
    }
    for (const type of types) {
      const id = ++this.cardId;
      const issued = openedAt + rng.int(1, 3 * MICROS_PER_SECOND);
      const status = CARD_STATUS_CHOICE.pick(rng);
      const expires =
        status === 'expired'
          ? issued + rng.int(180, 540) * MICROS_PER_DAY
          : issued + rng.int(4 * 365, 5 * 365) * MICROS_PER_DAY;
      const updated = status === 'active' ? issued : ACTIVITY_START + rng.int(0, ACTIVITY_MICROS - 1);
      const pan = `${type === 'credit' ? '5' : '4'}${rng.int(100, 999)} **** **** ${String(rng.int(0, 9999)).padStart(4, '0')}`;
      if (status === 'active' && this.activeCardOf[accountId] === 0) this.activeCardOf[accountId] = id;
      this.sink.row(
        'cards',
        `(${id},${accountId},'${pan}','${type}','${status}','${formatDate(expires)}','${formatDatetime6(issued)}','${formatDatetime6(updated)}')`,
      );
    }
  }

  /**
   * Events on an even clock over the activity year until the ledger reaches its target
   * size. Loans open in the first half and are repaid in installments; the other events
   * pick a random account.
   */
  private *activity(estimate: Record<BankTable, number>): Generator<void, void, void> {
    const rng = this.root.fork('activity');
    const events = Math.max(1, (estimate.transactions - this.accounts) / ROWS_PER_EVENT);
    // Headroom so the clock does not run out of the year before the target is met.
    const step = Math.max(1, Math.floor(ACTIVITY_MICROS / (events * 1.25)));
    const pLoanOpen = Math.min(0.5, estimate.loans / (events * 0.5));
    const pLoanRepay = Math.min(0.06, (estimate.loans * 7 * 0.8) / events);
    const openLoans: LoanState[] = [];
    const ids = this.ids;
    const skew = this.skew;
    const pHeavy = skew === null ? 0 : skew.heavyTotal / Math.max(1, estimate.transactions - this.accounts);

    for (let k = 0; this.txId < estimate.transactions; k++) {
      if (k % 64 === 0) yield;
      const at = ACTIVITY_START + k * step + rng.int(0, step - 1);
      if (at >= ACTIVITY_START + ACTIVITY_MICROS) break;
      this.activityEnd = at;
      if (this.loans.length < estimate.loans && rng.chance(pLoanOpen)) {
        openLoans.push(this.openLoan(rng, at));
      } else if (openLoans.length > 0 && rng.chance(pLoanRepay)) {
        this.repayLoan(rng, openLoans, at);
      } else {
        const kind = EVENT_CHOICE.pick(rng);
        if (skew !== null && rng.chance(pHeavy)) {
          // A heavy account spends all year: it is topped up before it runs dry.
          const account = skew.pick(rng);
          this.event(rng, (this.balance[account] as number) < 200_000 ? 'deposit' : kind, account, at, ids);
        } else {
          this.event(rng, kind, rng.int(1, this.accounts), at, ids);
        }
      }
    }
  }

  /**
   * Card authorisations not yet captured (holds) and transfers not yet booked, in the days
   * after the activity clock stopped: rows without postings, so balances are unchanged.
   */
  private pending(days: number): void {
    if (days === 0) return;
    const rng = this.root.fork('pending');
    const span = days * MICROS_PER_DAY;
    for (let account = 1; account <= this.accounts; account++) {
      const card = this.activeCardOf[account] as number;
      if (card > 0 && rng.chance(0.3)) {
        const holds = rng.int(1, 3);
        for (let h = 0; h < holds; h++) {
          const at = this.activityEnd + rng.int(1, span);
          this.sink.row(
            'payments',
            `(${++this.ids.payment},${account},${card},${rng.int(1, this.scale.merchants)},'${formatMoney(skewedCents(rng, 150, 30_000))}','authorized','${formatDatetime6(at)}')`,
          );
        }
      }
      const peers = this.byCurrency[this.currencyOf[account] as number] as number[];
      if (peers.length >= 2 && rng.chance(0.1)) {
        const pick = rng.int(0, peers.length - 1);
        const to = (peers[pick] === account ? peers[(pick + 1) % peers.length] : peers[pick]) as number;
        const id = ++this.ids.transfer;
        const at = this.activityEnd + rng.int(1, span);
        this.sink.row(
          'transfers',
          `(${id},${account},${to},'${formatMoney(rng.int(10, 2_000) * 100)}','${CURRENCIES[this.currencyOf[account] as number]?.code}','pending','TRF${String(id).padStart(10, '0')}','${formatDatetime6(at)}',NULL)`,
        );
      }
    }
  }

  private openLoan(rng: Random, at: number): LoanState {
    const customerId = rng.int(1, this.customers);
    const months = rng.int(3, 12);
    const principal = rng.int(10, 500) * 10_000; // 1,000.00 – 50,000.00
    const loan: LoanState = {
      id: this.loans.length + 1,
      customerId,
      accountId: this.firstAccountOf[customerId] as number,
      principal,
      outstanding: principal,
      installment: Math.ceil(principal / months),
      rateBp: rng.int(350, 1290),
      openedAt: at,
      months,
      updatedAt: at,
    };
    this.loans.push(loan);
    this.post(loan.accountId, 'credit', principal, `Loan disbursement L${loan.id}`, at);
    return loan;
  }

  private repayLoan(rng: Random, openLoans: LoanState[], at: number): void {
    const index = rng.int(0, openLoans.length - 1);
    const loan = openLoans[index] as LoanState;
    const amount = Math.min(loan.installment, loan.outstanding);
    if ((this.balance[loan.accountId] as number) < amount) return;
    loan.outstanding -= amount;
    loan.updatedAt = at;
    this.post(loan.accountId, 'debit', amount, `Loan repayment L${loan.id}`, at);
    if (loan.outstanding === 0) {
      openLoans[index] = openLoans[openLoans.length - 1] as LoanState;
      openLoans.pop();
    }
  }

  /** One activity event; debits that would overdraw are declined, failed or left out. */
  private event(
    rng: Random,
    kind: EventKind,
    account: number,
    at: number,
    ids: { transfer: number; payment: number },
  ): void {
    const available = this.balance[account] as number;
    switch (kind) {
      case 'payment': {
        const merchantId = rng.int(1, this.scale.merchants);
        const amount = skewedCents(rng, 150, 30_000);
        const card = this.activeCardOf[account] as number;
        const declined = available < amount || rng.chance(0.02);
        const id = ++ids.payment;
        this.sink.row(
          'payments',
          `(${id},${account},${qOrNull(card)},${merchantId},'${formatMoney(amount)}','${declined ? 'declined' : 'captured'}','${formatDatetime6(at)}')`,
        );
        if (declined) return;
        const how = card > 0 ? 'POS' : 'Direct debit';
        this.post(account, 'debit', amount, `${how} ${this.merchantNames[merchantId]}`, at, {
          merchantId,
          paymentId: id,
        });
        return;
      }
      case 'transfer': {
        const peers = this.byCurrency[this.currencyOf[account] as number] as number[];
        if (peers.length < 2) return;
        const pick = rng.int(0, peers.length - 1);
        const to = (peers[pick] === account ? peers[(pick + 1) % peers.length] : peers[pick]) as number;
        const id = ++ids.transfer;
        const wanted = rng.int(10, 2_000) * 100;
        const amount = Math.min(wanted, available);
        const created = formatDatetime6(at - rng.int(1, 2 * MICROS_PER_SECOND));
        const head = `${id},${account},${to}`;
        const tail = `'${CURRENCIES[this.currencyOf[account] as number]?.code}'`;
        const reference = `'TRF${String(id).padStart(10, '0')}'`;
        if (amount < 1_000) {
          this.sink.row(
            'transfers',
            `(${head},'${formatMoney(wanted)}',${tail},'failed',${reference},'${created}',NULL)`,
          );
          return;
        }
        this.sink.row(
          'transfers',
          `(${head},'${formatMoney(amount)}',${tail},'completed',${reference},'${created}','${formatDatetime6(at)}')`,
        );
        this.post(account, 'debit', amount, `Transfer to ${accountNumberFor(to)}`, at, { transferId: id });
        this.post(to, 'credit', amount, `Transfer from ${accountNumberFor(account)}`, at, { transferId: id });
        return;
      }
      case 'salary':
        this.post(account, 'credit', rng.int(1_500, 6_000) * 100, `Salary ${rng.pick(EMPLOYERS)}`, at);
        return;
      case 'deposit':
        this.post(account, 'credit', rng.cents(2_000, 100_000), 'Cash deposit', at);
        return;
      case 'atm': {
        const amount = rng.int(1, 20) * 2_000;
        const [city] = rng.pick(CITIES);
        if (available >= amount) this.post(account, 'debit', amount, `ATM withdrawal ${city}`, at);
        return;
      }
      case 'fee': {
        const amount = rng.cents(100, 2_500);
        if (available >= amount) this.post(account, 'debit', amount, 'Account fee', at);
        return;
      }
      case 'interest': {
        // Interest accrues on positive balances of savings accounts only.
        const cents = Math.floor(available / 400);
        if (this.kindOf[account] === SAVINGS && cents > 0)
          this.post(account, 'credit', cents, 'Interest', at);
        return;
      }
    }
  }

  /** The day after the activity year, closed accounts pay out what they hold. */
  private closures(): void {
    for (let id = 1; id <= this.accounts; id++) {
      const at = this.closedAt[id] as number;
      const left = this.balance[id] as number;
      if (at > 0 && left > 0) this.post(id, 'debit', left, 'Account closure payout', at);
    }
  }

  private *finalStates(): Generator<void, void, void> {
    for (let id = 1; id <= this.accounts; id++) {
      const money = formatMoney(this.balance[id] as number);
      this.sink.row(
        'balances',
        `(${id},'${money}','${money}','${formatDatetime6(this.lastPosted[id] as number)}')`,
      );
      if (id % 4096 === 0) yield;
    }
    const rng = this.root.fork('loans');
    for (const loan of this.loans) {
      const status = loan.outstanding === 0 ? 'repaid' : rng.chance(0.08) ? 'defaulted' : 'active';
      const maturity = formatDate(loan.openedAt + loan.months * 30 * MICROS_PER_DAY);
      this.sink.row(
        'loans',
        `(${loan.id},${loan.customerId},${loan.accountId},'${formatMoney(loan.principal)}','${formatMoney(loan.outstanding)}','${rateText(loan.rateBp)}','${status}','${formatDatetime6(loan.openedAt)}','${maturity}','${formatDatetime6(loan.updatedAt)}')`,
      );
    }
  }
}

const NO_ROWS: RowSink = { row: () => undefined };

/**
 * The pure generator: emits every row of the bank for `seed` and `scale` into `sink`, in a
 * fixed order. A generator function so the caller can pause it (back-pressure) between steps.
 */
export function* bankRows(
  seed: number | string,
  scale: BankScale,
  sink: RowSink,
  shape?: { history: HistoryShape; skew: Skew },
): Generator<void, void, void> {
  yield* new BankModel(seed, scale, sink, shape).rows();
}

// ---------------------------------------------------------------------------------------
// I/O edge: multi-row INSERTs on one connection, pipelined with generation.

/** mysql2 attaches the failed statement to its error; a 1 MB INSERT would flood the logs. */
function shortenSql(err: unknown): void {
  if (typeof err === 'object' && err !== null && 'sql' in err && typeof err.sql === 'string') {
    if (err.sql.length > 300) err.sql = `${err.sql.slice(0, 300)}… (${err.sql.length} chars)`;
  }
}

/** One loader connection and the statements queued on it. */
interface Lane {
  conn: PoolConnection;
  inFlight: Promise<void>[];
  sinceCommit: number;
}

class BulkLoader implements RowSink {
  private readonly buffers = new Map<BankTable, string[]>();
  private failure: unknown = null;
  readonly written: Record<BankTable, number>;
  private readonly meter: ProgressMeter;
  private readonly lanes: Lane[];

  constructor(
    conns: PoolConnection[],
    private readonly chunkRows: number,
    private readonly totals: Record<BankTable, number>,
    private readonly onProgress: ((p: GenerateProgress) => void) | undefined,
    private readonly maxInFlightPerLane = 2,
    private readonly rowsPerCommit = 20_000,
  ) {
    this.lanes = conns.map((conn) => ({ conn, inFlight: [], sinceCommit: 0 }));
    this.meter = new ProgressMeter(BANK_TABLES.reduce((n, t) => n + totals[t], 0));
    this.written = Object.fromEntries(BANK_TABLES.map((t) => [t, 0])) as Record<BankTable, number>;
  }

  row(table: BankTable, tuple: string): void {
    let buffer = this.buffers.get(table);
    if (buffer === undefined) {
      buffer = [];
      this.buffers.set(table, buffer);
    }
    buffer.push(tuple);
    if (buffer.length >= this.chunkRows) this.flush(table);
  }

  /** Resolves once every lane has room; rethrows a failed statement. */
  async backpressure(): Promise<void> {
    for (const lane of this.lanes) {
      while (lane.inFlight.length >= this.maxInFlightPerLane) await lane.inFlight[0];
    }
    if (this.failure !== null) throw this.failure;
  }

  async finish(): Promise<void> {
    for (const table of this.buffers.keys()) this.flush(table);
    for (const lane of this.lanes) this.send(lane, 'COMMIT', null, 0);
    await Promise.all(this.lanes.flatMap((l) => l.inFlight));
    if (this.failure !== null) throw this.failure;
  }

  private flush(table: BankTable): void {
    const buffer = this.buffers.get(table);
    if (buffer === undefined || buffer.length === 0) return;
    this.buffers.set(table, []);
    const sql = `INSERT INTO ${table} (${TABLE_COLUMNS[table].join(',')}) VALUES ${buffer.join(',')}`;
    const lane = this.laneFor(table);
    this.send(lane, sql, table, buffer.length);
    lane.sinceCommit += buffer.length;
    if (lane.sinceCommit >= this.rowsPerCommit) {
      // Moderate transactions keep undo small and give a CDC reader digestible units.
      this.send(lane, 'COMMIT', null, 0);
      this.send(lane, 'BEGIN', null, 0);
      lane.sinceCommit = 0;
    }
  }

  /**
   * Each table stays on one connection: two transactions inserting into the same table's
   * indexes can deadlock. The ledger, most of the volume, gets a connection of its own.
   */
  private laneFor(table: BankTable): Lane {
    const n = this.lanes.length;
    if (n === 1 || table === 'transactions') return this.lanes[0] as Lane;
    return this.lanes[1 + (BANK_TABLES.indexOf(table) % (n - 1))] as Lane;
  }

  private send(lane: Lane, sql: string, table: BankTable | null, rows: number): void {
    // mysql2 runs queued queries of one connection in order, so the model keeps generating
    // while the server works; a rejection is recorded here and rethrown at the next wait.
    const done: Promise<void> = lane.conn.query(sql).then(
      () => {
        lane.inFlight.splice(lane.inFlight.indexOf(done), 1);
        if (table !== null) this.report(table, rows);
      },
      (cause: unknown) => {
        lane.inFlight.splice(lane.inFlight.indexOf(done), 1);
        shortenSql(cause);
        this.failure ??= new AdapterError(
          'BANK_GENERATE_FAILED',
          `bulk insert into ${table ?? 'bank'} failed`,
          {
            cause,
          },
        );
      },
    );
    lane.inFlight.push(done);
  }

  private report(table: BankTable, rows: number): void {
    this.written[table] += rows;
    const overall = this.meter.add(rows);
    this.onProgress?.({
      table,
      rows: this.written[table],
      total: Math.max(this.totals[table], this.written[table]),
      rowsPerSec: overall.rowsPerSec,
      etaSec: overall.etaSec,
    });
  }
}

/**
 * Fills an empty bank schema (createBankDatabase) with deterministic data. Foreign-key and
 * unique checks are off during the load; the data satisfies them by construction.
 */
export async function generateBank(
  pool: Pool,
  options: GenerateOptions,
  onProgress?: (p: GenerateProgress) => void,
): Promise<GenerateResult> {
  const opts = generateOptionsSchema.parse(options);
  const scale = resolveScale(opts.scale);
  const started = performance.now();
  const [rows] = await pool.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM accounts');
  if (Number(rows[0]?.n) > 0) {
    throw new AdapterError('BANK_NOT_EMPTY', 'the bank database already has accounts', {
      hint: 'generate into a fresh database (createBankDatabase with dropExisting)',
    });
  }
  const conns: PoolConnection[] = [];
  try {
    for (let i = 0; i < opts.connections; i++) {
      const conn = await pool.getConnection();
      conns.push(conn);
      await conn.query('SET SESSION foreign_key_checks = 0, unique_checks = 0');
      if (opts.skipBinlog) await conn.query('SET SESSION sql_log_bin = 0');
      await conn.query('BEGIN');
    }
    const shape = { history: opts.history, skew: opts.skew };
    const loader = new BulkLoader(
      conns,
      opts.chunkRows,
      new BankModel(opts.seed, scale, NO_ROWS, shape).estimate(),
      onProgress,
    );
    try {
      for (const _ of bankRows(opts.seed, scale, loader, shape)) await loader.backpressure();
      await loader.finish();
    } catch (err) {
      await Promise.all(conns.map((c) => c.query('ROLLBACK').catch(() => undefined)));
      throw err;
    }
    const elapsedMs = performance.now() - started;
    const total = BANK_TABLES.reduce((n, t) => n + loader.written[t], 0);
    return {
      tables: loader.written,
      rows: total,
      elapsedMs: Math.round(elapsedMs),
      rowsPerSec: Math.round(total / (elapsedMs / 1000)),
    };
  } finally {
    // The connections go back to the pool: restore their sessions as we found them.
    const restore = `SET SESSION foreign_key_checks = 1, unique_checks = 1${opts.skipBinlog ? ', sql_log_bin = 1' : ''}`;
    for (const conn of conns) {
      const restored = await conn.query(restore).then(
        () => true,
        () => false,
      );
      if (restored) conn.release();
      else conn.destroy();
    }
  }
}

export interface BankInvariantReport {
  /** Accounts whose available or ledger balance differs from the signed sum of their postings. */
  balanceMismatches: number;
  /** Postings whose balance_after is not the running sum in (posted_at, id) order. */
  runningMismatches: number;
  /** Postings of an account whose posted_at does not grow with id. */
  unorderedPostings: number;
  /** Balances below zero. */
  negativeBalances: number;
}

/**
 * Counts violations of the ledger invariants (all zero for a consistent bank). Scans the
 * whole ledger: meant for tests and after-the-fact checks, not for a busy production table.
 */
export async function bankInvariantViolations(pool: Pool): Promise<BankInvariantReport> {
  const [rows] = await pool.query<mysql.RowDataPacket[]>(`
SELECT
  (SELECT COUNT(*) FROM balances b
     LEFT JOIN (SELECT account_id, SUM(IF(direction = 'credit', amount, -amount)) AS total
                  FROM transactions GROUP BY account_id) t ON t.account_id = b.account_id
    WHERE b.available <> COALESCE(t.total, 0) OR b.ledger <> COALESCE(t.total, 0)) AS balance_mismatches,
  (SELECT COUNT(*) FROM (
     SELECT balance_after,
            SUM(IF(direction = 'credit', amount, -amount))
              OVER (PARTITION BY account_id ORDER BY posted_at, id) AS running
       FROM transactions) r
    WHERE r.running <> r.balance_after) AS running_mismatches,
  (SELECT COUNT(*) FROM (
     SELECT posted_at, LAG(posted_at) OVER (PARTITION BY account_id ORDER BY id) AS previous
       FROM transactions) o
    WHERE o.previous >= o.posted_at) AS unordered_postings,
  (SELECT COUNT(*) FROM balances WHERE available < 0 OR ledger < 0) AS negative_balances`);
  const r = z
    .object({
      balance_mismatches: z.coerce.number(),
      running_mismatches: z.coerce.number(),
      unordered_postings: z.coerce.number(),
      negative_balances: z.coerce.number(),
    })
    .parse(rows[0]);
  return {
    balanceMismatches: r.balance_mismatches,
    runningMismatches: r.running_mismatches,
    unorderedPostings: r.unordered_postings,
    negativeBalances: r.negative_balances,
  };
}
