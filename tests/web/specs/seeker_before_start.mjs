// Before the first request the seeker's page says what happens next, who the listeners are (not
// therapists or an emergency service), what is kept and for how long (as docs/redis-keys.md says:
// a chat's record 24 hours, a rating 30 days, a report 90 days) and who Warmline is for.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { T, withStack, blankPage, visit, askForChat, waitInLine } from "../flows.mjs";

describe("the seeker's page before the first request", () => {
  const suite = withStack();

  it("says what happens, who listens, what is kept and for whom it is", { timeout: 60000 }, async () => {
    const { stack } = suite;
    const seeker = await blankPage(stack);
    await visit(stack, seeker);
    const about = seeker.getByRole("region", { name: "Before you start" });
    await about.waitFor({ timeout: T });
    const text = await about.innerText();
    for (const fact of [/What happens next/, /trained volunteers/, /not therapists, doctors or an emergency service/,
                        /24 hours/, /rating for 30 days/, /report for\s+90 days, only if you choose to send one/,
                        /18 and over/])
      assert.match(text, fact);
    // it belongs to the start: gone once the person is waiting
    await askForChat(seeker, { topic: "general", language: "en" });
    await waitInLine(seeker);
    assert.equal(await about.isVisible(), false);
  });
});
