// Hostile values for the injection tests (unit and end-to-end): each would create `marker` if
// any part of it were read as shell code. A test asserts the marker never appears and the value
// comes out exactly.

/** Attack name -> value. `chained` names a variable the tests fill with another attack. */
export function injectionAttacks(marker: string): Record<string, string> {
  return {
    commandSubstitution: `$(touch ${marker})`,
    backticks: `\`touch ${marker}\``,
    doubleQuoteBreakout: `"; touch ${marker}; "`,
    singleQuoteBreakout: `'; touch ${marker}; '`,
    newline: `x\ntouch ${marker}`,
    ifs: `\${IFS}touch\${IFS}${marker}`,
    arithmetic: `$((1+1))$(touch ${marker})`,
    bashArraySubscript: `a[$(touch ${marker})]`,
    semicolon: `a; touch ${marker}`,
    pipe: `a | touch ${marker}`,
    redirect: `> ${marker}`,
    chained: '${MESON_V_2}',
    unicode: 'héllo ✓ 日本 \u202e',
  };
}
