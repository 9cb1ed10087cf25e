"""The voice call's TwiML and the keypress mapping: pure functions, parsed back with xml.etree."""

import xml.etree.ElementTree as ET

import pytest

from pingan.handlers.channels.twilio_voice import ack_url, keypress_command, voice_ack_twiml

ACTION = "https://pingan.example.org/v1/intake/twilio/voice/ack?key=k-123"


@pytest.mark.parametrize(("digits", "command"), [("4", "acknowledge"), ("5", "escalate"), ("6", "close"),
                                                 (" 4 ", "acknowledge")])
def test_keypress_commands(digits: str, command: str) -> None:
    assert keypress_command(digits) == command


@pytest.mark.parametrize("digits", ["", "0", "1", "7", "9", "*", "#", "44", "四"])
def test_other_keys_mean_nothing(digits: str) -> None:
    assert keypress_command(digits) is None


def test_chinese_call_says_the_message_twice_then_the_menu_then_goodbye() -> None:
    root = ET.fromstring(voice_ack_twiml("化工厂泄漏：请立即到指挥所报到", "zh", ACTION))
    assert root.tag == "Response"
    gather, goodbye = list(root)
    assert gather.tag == "Gather"
    assert gather.attrib == {"action": ACTION, "method": "POST", "numDigits": "1", "timeout": "8"}
    message, menu_zh, menu_en = list(gather)
    assert message.tag == "Say" and message.text == "化工厂泄漏：请立即到指挥所报到"
    assert message.attrib == {"language": "zh-CN", "loop": "2"}
    assert (menu_zh.attrib["language"], menu_zh.text) == ("zh-CN", "按4确认，按5升级，按6关闭。")
    assert (menu_en.attrib["language"], menu_en.text) == ("en-US", "Press 4 to acknowledge, 5 to escalate, 6 to close.")
    # Only reached when no key was pressed; a key goes to the Gather's action instead.
    assert goodbye.tag == "Say" and goodbye.attrib["language"] == "zh-CN" and "再见" in (goodbye.text or "")


def test_english_call_speaks_english_first() -> None:
    root = ET.fromstring(voice_ack_twiml("Chemical leak at plant 3", "en", ACTION))
    gather, goodbye = list(root)
    says = list(gather)
    assert [s.attrib["language"] for s in says] == ["en-US", "en-US", "zh-CN"]
    assert says[0].text == "Chemical leak at plant 3" and says[0].attrib["loop"] == "2"
    assert goodbye.attrib["language"] == "en-US" and "Goodbye" in (goodbye.text or "")


def test_markup_in_the_text_is_escaped_and_line_breaks_collapse() -> None:
    text = 'Leak <b>& "smoke"</b>\n  evacuate </Say><Hangup/>'
    root = ET.fromstring(voice_ack_twiml(text, "en", ACTION))
    message = root.find("Gather/Say")
    assert message is not None and message.text == 'Leak <b>& "smoke"</b> evacuate </Say><Hangup/>'
    assert root.find(".//Hangup") is None


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError):
        voice_ack_twiml("text", "fr", ACTION)


def test_ack_url_carries_the_key_and_tolerates_a_trailing_slash() -> None:
    assert ack_url("https://pingan.example.org/", "k-123") == ACTION
    assert ack_url("https://pingan.example.org", "a b&c") == \
        "https://pingan.example.org/v1/intake/twilio/voice/ack?key=a+b%26c"
