"""Placeholders: one renderer, and where a value goes decides how it is written."""

import json

import pytest

from endpoints.placeholders import Values, render

PAYLOAD = {
    "temperature": 21.5,
    "name": 'say "hi"\nnow',
    "on": True,
    "nothing": None,
    "nested": {"a": [1, 2], "b": "x"},
    "list": [1, "two"],
    "unicode": "caf\u00e9 \u2603",
}
VALUES = Values(payload=PAYLOAD, device="dev1", user="alice", ts=1700000000123)


def json_render(template, values=VALUES):
    text = render(template, values, "json")
    return text, json.loads(text)


class TestJsonBody:
    def test_whole_body_placeholder_is_the_value_itself(self):
        assert json_render("{{}}")[1] == PAYLOAD
        assert json_render("{{temperature}}") == ("21.5", 21.5)
        assert json_render(" {{ nested }} ")[1] == {"a": [1, 2], "b": "x"}
        assert json_render("{{name}}")[1] == 'say "hi"\nnow'

    def test_value_positions_take_json_values(self):
        _, data = json_render(
            '{"t": {{temperature}}, "on": {{on}}, "n": {{nothing}}, "x": {{nested}}, "l": {{list}}}'
        )
        assert data == {"t": 21.5, "on": True, "n": None, "x": PAYLOAD["nested"], "l": [1, "two"]}

    def test_inside_strings_values_are_escaped_text(self):
        _, data = json_render('{"msg": "{{name}} at {{temperature}}", "x": "{{nested}}"}')
        assert data == {"msg": 'say "hi"\nnow at 21.5', "x": '{"a":[1,2],"b":"x"}'}

    def test_quotes_and_escapes_in_the_template_are_followed(self):
        _, data = json_render('{"a\\"{{name}}": "\\\\{{temperature}}", "b": {{temperature}}}')
        assert data == {'a"say "hi"\nnow': "\\21.5", "b": 21.5}

    def test_missing_keys_are_null_as_values_and_empty_inside_strings(self):
        _, data = json_render('{"v": {{missing}}, "s": "<{{missing}}>"}')
        assert data == {"v": None, "s": "<>"}
        assert json_render("{{missing}}") == ("null", None)

    def test_specials(self):
        _, data = json_render('{"d": "{{device}}", "u": "{{user}}", "ts": {{ts}}}')
        assert data == {"d": "dev1", "u": "alice", "ts": 1700000000123}

    def test_specials_win_over_payload_fields(self):
        values = Values(payload={"device": "spoofed", "ts": 1}, device="dev1", user="bob", ts=5)
        assert json_render('["{{device}}", {{ts}}]', values)[1] == ["dev1", 5]

    def test_no_device_renders_as_missing(self):
        values = Values(payload={}, device=None, user="bob", ts=5)
        assert json_render('{"d": "{{device}}", "v": {{device}}}', values)[1] == {
            "d": "",
            "v": None,
        }

    def test_non_object_payloads(self):
        values = Values(payload=[1, 2], user="u", ts=1)
        assert json_render("{{}}", values)[1] == [1, 2]
        assert json_render('{"k": {{key}}}', values)[1] == {"k": None}
        assert json_render("{{}}", Values(payload="text"))[1] == "text"

    def test_unicode_survives(self):
        assert json_render('"{{unicode}}"')[1] == "caf\u00e9 \u2603"


class TestUrl:
    def test_values_are_percent_encoded(self):
        url = render("https://h.example/{{name}}/x?t={{temperature}}&d={{device}}", VALUES, "url")
        assert url == "https://h.example/say%20%22hi%22%0Anow/x?t=21.5&d=dev1"

    def test_a_value_cannot_add_path_segments_or_parameters(self):
        values = Values(payload={"p": "../admin?x=1&y=2#frag"})
        assert render("https://h.example/a/{{p}}", values, "url") == (
            "https://h.example/a/..%2Fadmin%3Fx%3D1%26y%3D2%23frag"
        )

    def test_nested_values_and_missing_keys(self):
        assert render("/q?n={{nested}}&m={{missing}}", VALUES, "url") == (
            "/q?n=%7B%22a%22%3A%5B1%2C2%5D%2C%22b%22%3A%22x%22%7D&m="
        )


class TestText:
    def test_headers_never_carry_line_breaks(self):
        values = Values(payload={"evil": "x\r\nSet-Cookie: a=b\x00"})
        assert render("Bearer {{evil}}", values, "header") == "Bearer x Set-Cookie: a=b "

    def test_text_is_as_is_and_non_strings_are_json(self):
        text = render(
            "{{name}}|{{temperature}}|{{on}}|{{nothing}}|{{nested}}|{{missing}}|", VALUES, "text"
        )
        assert text == 'say "hi"\nnow|21.5|true|null|{"a":[1,2],"b":"x"}||'

    def test_whole_payload_as_text(self):
        assert json.loads(render("{{}}", VALUES, "text")) == PAYLOAD

    def test_html_is_escaped(self):
        values = Values(payload={"x": "<script>alert('1')</script>"})
        assert render("<p>{{x}}</p>", values, "html") == (
            "<p>&lt;script&gt;alert(&#x27;1&#x27;)&lt;/script&gt;</p>"
        )

    def test_templates_without_placeholders_are_unchanged(self):
        for context in ("json", "url", "header", "text", "html"):
            assert render('{"a": "b {c}"}', VALUES, context) == '{"a": "b {c}"}'
            assert render("", VALUES, context) == ""


def test_unknown_context_is_a_programming_error():
    with pytest.raises(ValueError):
        render("{{x}}", VALUES, "sql")
