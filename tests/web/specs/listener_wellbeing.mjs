// The admin's wellbeing limits on the listener's desk: how many chats until a break, then, when
// the break is due, the desk says so, goes away (no new requests), refuses Available with the
// matchmaker's sentence, and counts the break down once the last chat has ended.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { T, withStack, blankPage, visit, availableListener, askForChat, acceptOffer, isOn, availableSwitch, endChat } from "../flows.mjs";
import { TABLES } from "../languages.mjs";

describe("a listener's break after a number of chats", () => {
  const suite = withStack({}, async (stack) => ({
    listener: await stack.createListener({ name: "Ada", topics: ["anxiety"], languages: ["en"], maxChats: 2,
                                           extra: ["--break-after-chats", "2", "--break-min", "10"] }),
  }));

  it("counts down to it, calls it, and times it from the last chat's end", { timeout: 90000 }, async () => {
    const { stack, listener } = suite;
    const desk = await blankPage(stack);
    await availableListener(stack, listener, { page: desk });
    const wellbeing = desk.locator("#wellbeing");
    await desk.getByText("A break after 2 more chats (10-minute breaks).").waitFor({ timeout: T });

    const first = await blankPage(stack);
    await visit(stack, first);
    await askForChat(first, { topic: "anxiety" });
    await acceptOffer(desk);
    await desk.getByText("A break after 1 more chat (10-minute breaks).").waitFor({ timeout: T });

    const second = await blankPage(stack);
    await visit(stack, second);
    await askForChat(second, { topic: "anxiety" });
    await acceptOffer(desk);
    // the break is due: told why, set away, and the desk says when it starts
    await desk.getByText(/^Time for a break\. You won't get new requests until it's over/).waitFor({ timeout: T });
    await desk.getByText("Time for a break: it starts when your open chats end. No new requests meanwhile.").waitFor({ timeout: T });
    assert.equal(await isOn(availableSwitch(desk)), false);
    await availableSwitch(desk).click();
    await desk.getByText("Your break starts when your open chats end.", { exact: true }).waitFor({ timeout: T });

    await endChat(first);
    await endChat(second);
    await desk.getByText(/^Your break: (10:00|9:\d\d) left\. Rest well/).waitFor({ timeout: T });
    assert.match(await wellbeing.innerText(), /left/);
    await availableSwitch(desk).click();
    await desk.getByText(/^You are on a break for 10 more minutes\. Rest well\.$/).waitFor({ timeout: T });
    assert.equal(await isOn(availableSwitch(desk)), false);

    // in German, the matchmaker's English sentences are said in German (i18n.js fromServer)
    const de = TABLES.de;
    await desk.getByLabel("Language").selectOption("de");
    await desk.locator("#available").click();
    await desk.getByText(/^Du hast noch (10|9) Minuten Pause\. Erhol dich gut\.$/).waitFor({ timeout: T });
    assert.equal(await desk.getByText("You are on a break for", { exact: false }).count(), 0);
    assert.ok(de["server.breakDue"].startsWith("Zeit für eine Pause."));
    assert.deepEqual(stack.pageErrors, []);
  });
});
