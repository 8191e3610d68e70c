import { describe, expect, it } from 'vitest';
import { BUILTINS } from './builtins.ts';
import { ExprError } from './errors.ts';
import { evaluate } from './evaluate.ts';
import type { Value } from './types.ts';

const LA = 'America/Los_Angeles';

function ev(src: string, vars: Record<string, Value> = {}): Value {
  return evaluate(src, vars);
}

function code(src: string, vars: Record<string, Value> = {}): string {
  try {
    evaluate(src, vars);
  } catch (err) {
    expect(err).toBeInstanceOf(ExprError);
    return (err as ExprError).code;
  }
  throw new Error(`expected ${src} to fail`);
}

describe('tsToDateInt', () => {
  it('is the UTC date by default', () => {
    expect(ev('tsToDateInt(1510099200000)')).toBe(20171108);
    expect(ev('tsToDateInt(1510099199999)')).toBe(20171107);
  });
  it('uses the timezone given', () => {
    expect(ev(`tsToDateInt(1510099200000, "${LA}")`)).toBe(20171107);
    expect(ev('tsToDateInt(1510099200000, "Asia/Tokyo")')).toBe(20171108);
    expect(ev('tsToDateInt(1510063200000, "Asia/Kolkata")')).toBe(20171107); // 19:30 IST
  });
  it('rejects an unknown timezone and a non-number', () => {
    expect(code('tsToDateInt(0, "Mars/Phobos")')).toBe('EXPR_ARGUMENT');
    expect(code('tsToDateInt("2017")')).toBe('EXPR_TYPE');
    expect(code('tsToDateInt(1e300)')).toBe('EXPR_ARGUMENT');
  });
});

describe('dateIntToTs', () => {
  it('is UTC midnight by default and accepts a dateInt string', () => {
    expect(ev('dateIntToTs(20171108)')).toBe(Date.UTC(2017, 10, 8));
    expect(ev('dateIntToTs("20171108")')).toBe(Date.UTC(2017, 10, 8));
  });
  it('gives local midnight across a DST change in America/Los_Angeles', () => {
    // 2017-11-05 is the fall-back day: midnight is still PDT (-7), the next midnight PST (-8).
    expect(ev(`dateIntToTs(20171105, "${LA}")`)).toBe(Date.UTC(2017, 10, 5, 7));
    expect(ev(`dateIntToTs(20171106, "${LA}")`)).toBe(Date.UTC(2017, 10, 6, 8));
    // 2018-03-11 springs forward: a 23-hour day.
    const a = ev(`dateIntToTs(20180311, "${LA}")`) as number;
    const b = ev(`dateIntToTs(20180312, "${LA}")`) as number;
    expect(a).toBe(Date.UTC(2018, 2, 11, 8));
    expect(b - a).toBe(23 * 3600_000);
  });
  it('gives the first instant of the day where midnight does not exist', () => {
    // Brazil began DST at 00:00 on 2018-11-04: the day starts at 01:00 (-02).
    expect(ev('dateIntToTs(20181104, "America/Sao_Paulo")')).toBe(Date.UTC(2018, 10, 4, 3));
  });
  it('round-trips with tsToDateInt', () => {
    for (const d of [20160229, 20171231, 20180101, 20180311, 20181104])
      for (const tz of ['UTC', LA, 'Asia/Kathmandu', 'America/Sao_Paulo', 'Pacific/Chatham'])
        expect(ev(`tsToDateInt(dateIntToTs(${d}, "${tz}"), "${tz}")`)).toBe(d);
  });
  it('rejects dates that do not exist', () => {
    expect(code('dateIntToTs(20170229)')).toBe('EXPR_ARGUMENT');
    expect(code('dateIntToTs(20171301)')).toBe('EXPR_ARGUMENT');
    expect(code('dateIntToTs(2017110)')).toBe('EXPR_ARGUMENT');
    expect(code('dateIntToTs("2017-11-08")')).toBe('EXPR_ARGUMENT');
    expect(code('dateIntToTs(20171108.5)')).toBe('EXPR_ARGUMENT');
    expect(code('dateIntToTs([20171108])')).toBe('EXPR_TYPE');
  });
});

describe('dateIntAdd', () => {
  it('crosses month and year ends', () => {
    expect(ev('dateIntAdd(20171231, 1)')).toBe(20180101);
    expect(ev('dateIntAdd(20180101, -1)')).toBe(20171231);
    expect(ev('dateIntAdd(20170131, 1)')).toBe(20170201);
    expect(ev('dateIntAdd(20170430, 1)')).toBe(20170501);
    expect(ev('dateIntAdd(20171108, 0)')).toBe(20171108);
    expect(ev('dateIntAdd(20171108, 365)')).toBe(20181108);
  });
  it('knows leap years', () => {
    expect(ev('dateIntAdd(20160228, 1)')).toBe(20160229);
    expect(ev('dateIntAdd(20170228, 1)')).toBe(20170301);
    expect(ev('dateIntAdd(19000228, 1)')).toBe(19000301); // divisible by 100: not leap
    expect(ev('dateIntAdd(20000228, 1)')).toBe(20000229); // divisible by 400: leap
    expect(ev('dateIntAdd(20160301, -1)')).toBe(20160229);
  });
  it('rejects fractional days and leaving years 1000..9999', () => {
    expect(code('dateIntAdd(20171108, 1.5)')).toBe('EXPR_ARGUMENT');
    expect(code('dateIntAdd(99991231, 1)')).toBe('EXPR_ARGUMENT');
    expect(code('dateIntAdd(20171108, "1")')).toBe('EXPR_TYPE');
  });
});

describe('dayFromDateInt', () => {
  it('is the day of the month', () => {
    expect(ev('dayFromDateInt(20171108)')).toBe(8);
    expect(ev('dayFromDateInt("20160229")')).toBe(29);
    expect(code('dayFromDateInt(20170230)')).toBe('EXPR_ARGUMENT');
  });
});

describe('dateIntRange', () => {
  it('includes both ends and crosses month ends', () => {
    expect(ev('dateIntRange(20160227, 20160302)')).toEqual([
      20160227, 20160228, 20160229, 20160301, 20160302,
    ]);
    expect(ev('dateIntRange(20171108, 20171108)')).toEqual([20171108]);
    expect(ev('dateIntRange(20171109, 20171108)')).toEqual([]);
  });
  it('is bounded by the list length limit', () => {
    expect(code('dateIntRange(10000101, 99991231)')).toBe('EXPR_LIMIT');
  });
});

describe('formatTs', () => {
  const ts = Date.UTC(2017, 10, 8, 13, 5, 9, 7);
  it('formats the pattern letters', () => {
    expect(ev(`formatTs(${ts}, "yyyy-MM-dd'T'HH:mm:ss.SSSXXX")`)).toBe('2017-11-08T13:05:09.007Z');
    expect(ev(`formatTs(${ts}, "yy M d H m s")`)).toBe('17 11 8 13 5 9');
    expect(ev(`formatTs(${ts}, "EEE EEEE MMM MMMM hh h a")`)).toBe('Wed Wednesday Nov November 01 1 PM');
    expect(ev(`formatTs(${ts}, "'it''s' yyyy/MM")`)).toBe("it's 2017/11");
  });
  it('uses the timezone and its offset', () => {
    expect(ev(`formatTs(${ts}, "yyyy-MM-dd HH:mm XXX Z", "${LA}")`)).toBe('2017-11-08 05:05 -08:00 -0800');
    expect(ev(`formatTs(${ts}, "HH:mm XXX", "Asia/Kolkata")`)).toBe('18:35 +05:30');
  });
  it('rejects unknown letters, unclosed quotes and bad timezones', () => {
    expect(code(`formatTs(${ts}, "yyyy-QQ")`)).toBe('EXPR_ARGUMENT');
    expect(code(`formatTs(${ts}, "'open")`)).toBe('EXPR_ARGUMENT');
    expect(code(`formatTs(${ts}, "yyyy", "Nowhere")`)).toBe('EXPR_ARGUMENT');
  });
});

describe('min and max', () => {
  it('take several arguments or one list', () => {
    expect(ev('min(3, 1, 2)')).toBe(1);
    expect(ev('max(3, 1.5, 2)')).toBe(3);
    expect(ev('min([4, -2, 9])')).toBe(-2);
    expect(ev('max(["b", "c", "a"])')).toBe('c');
    expect(ev('min(7)')).toBe(7);
  });
  it('reject empty lists and mixed types', () => {
    expect(code('min([])')).toBe('EXPR_ARGUMENT');
    expect(code('max(1, "a")')).toBe('EXPR_TYPE');
    expect(code('max([true])')).toBe('EXPR_TYPE');
    expect(code('max()')).toBe('EXPR_ARITY');
  });
});

describe('len, range, split, join, lower, upper, contains', () => {
  it('len counts characters, elements and keys', () => {
    expect(ev('len("abc")')).toBe(3);
    expect(ev('len([1, 2])')).toBe(2);
    expect(ev('len(m)', { m: { a: 1, b: 2 } })).toBe(2);
    expect(code('len(1)')).toBe('EXPR_TYPE');
  });
  it('range counts from 0 or between two bounds, and fails fast when too long', () => {
    expect(ev('range(4)')).toEqual([0, 1, 2, 3]);
    expect(ev('range(0)')).toEqual([]);
    expect(ev('range(-3)')).toEqual([]);
    expect(ev('range(2, 5)')).toEqual([2, 3, 4]);
    expect(code('range(1.5)')).toBe('EXPR_ARGUMENT');
    const t = performance.now();
    expect(code('range(1e9)')).toBe('EXPR_LIMIT');
    expect(performance.now() - t).toBeLessThan(1000);
  });
  it('split and join', () => {
    expect(ev('split("a,b,,c", ",")')).toEqual(['a', 'b', '', 'c']);
    expect(ev('split("abc", "")')).toEqual(['a', 'b', 'c']);
    expect(ev('join(["a", 1, true, null], "-")')).toBe('a-1-true-null');
    expect(ev('join(["a", "b"])')).toBe('a,b');
    expect(code('join([[1]], ",")')).toBe('EXPR_TYPE');
    expect(code('join("ab", ",")')).toBe('EXPR_TYPE');
  });
  it('lower and upper', () => {
    expect(ev('lower("AbC")')).toBe('abc');
    expect(ev('upper("AbC")')).toBe('ABC');
    expect(code('upper(1)')).toBe('EXPR_TYPE');
  });
  it('contains looks in strings, lists and map keys', () => {
    expect(ev('contains("s3://bucket", "bucket")')).toBe(true);
    expect(ev('contains([1, [2, 3]], [2, 3])')).toBe(true);
    expect(ev('contains([1, 2], "1")')).toBe(false);
    expect(ev('contains(m, "a")', { m: { a: 1 } })).toBe(true);
    expect(ev('contains(m, "toString")', { m: { a: 1 } })).toBe(false);
    expect(code('contains(1, 1)')).toBe('EXPR_TYPE');
  });
});

describe('the other helpers', () => {
  it('keys, str, long, double', () => {
    expect(ev('keys(m)', { m: { b: 1, a: 2 } })).toEqual(['a', 'b']);
    expect(ev('str([1, "a"])')).toBe('[1,"a"]');
    expect(ev('str(null)')).toBe('null');
    expect(ev('long("42")')).toBe(42);
    expect(ev('long(-2.7)')).toBe(-2);
    expect(ev('double("2.5")')).toBe(2.5);
    expect(code('long("x")')).toBe('EXPR_ARGUMENT');
    expect(code('double("")')).toBe('EXPR_ARGUMENT');
    expect(code('keys([1])')).toBe('EXPR_TYPE');
  });
  it('trim, replace, startsWith, endsWith, substring', () => {
    expect(ev('trim("  a ")')).toBe('a');
    expect(ev('replace("a.b.c", ".", "/")')).toBe('a/b/c');
    expect(code('replace("a", "", "b")')).toBe('EXPR_ARGUMENT');
    expect(ev('startsWith("s3://x", "s3://")')).toBe(true);
    expect(ev('endsWith("x.csv", ".json")')).toBe(false);
    expect(ev('substring("20171108", 0, 4)')).toBe('2017');
    expect(ev('substring("20171108", 6)')).toBe('08');
  });
  it('abs, floor, ceil, round', () => {
    expect(ev('abs(-3)')).toBe(3);
    expect(ev('floor(2.7)')).toBe(2);
    expect(ev('floor(-2.5)')).toBe(-3);
    expect(ev('ceil(2.1)')).toBe(3);
    expect(ev('round(2.5)')).toBe(3);
    expect(ev('round(-2.5)')).toBe(-3);
    expect(ev('round(-0.2)')).toBe(0);
  });
  it('every built-in documents itself', () => {
    for (const [name, b] of BUILTINS) expect(b.doc.startsWith(name)).toBe(true);
  });
});

describe('strings count characters, not UTF-16 units', () => {
  it('len, indexing and substring agree with split(s, "") on emoji', () => {
    expect(ev('len("😀")')).toBe(1);
    expect(ev('len(s)', { s: 'a😀b' })).toBe(3);
    expect(ev('len(split(s, ""))', { s: 'a😀b' })).toBe(3);
    expect(ev('s[1]', { s: 'a😀b' })).toBe('😀');
    expect(ev('substring(s, 1, 2)', { s: 'a😀b' })).toBe('😀');
    expect(ev('substring("hello", 3, 1)')).toBe('el');
    expect(ev('substring("hello", -2)')).toBe('hello');
    expect(code('s[3]', { s: 'a😀b' })).toBe('EXPR_KEY');
  });
});

describe('time zone abbreviations', () => {
  it('are refused with the zone ICU would have picked (BST is Asia/Dhaka there)', () => {
    expect(code('tsToDateInt(0, "BST")')).toBe('EXPR_ARGUMENT');
    expect(code('tsToDateInt(0, "EST")')).toBe('EXPR_ARGUMENT');
    expect(() => ev('tsToDateInt(0, "PST")')).toThrow(/it would be read as America\/Los_Angeles/);
    expect(ev('tsToDateInt(0, "UTC")')).toBe(19700101);
    expect(ev('tsToDateInt(0, "PST8PDT")')).toBe(19691231);
  });
});

describe('a day a time zone skipped', () => {
  it('is named as such (Samoa skipped 2011-12-30 when it crossed the date line)', () => {
    expect(() => ev('dateIntToTs(20111230, "Pacific/Apia")')).toThrow(
      'day 20111230 does not exist in Pacific/Apia',
    );
    expect(ev('tsToDateInt(dateIntToTs(20111231, "Pacific/Apia"), "Pacific/Apia")')).toBe(20111231);
  });
});
