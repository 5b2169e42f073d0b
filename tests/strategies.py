"""Hypothesis strategies for what the network may send: JSON text written by hand (so that it can
be anything a client might send: deep nesting, huge numbers, NaN, duplicate keys, NUL characters
and lone surrogates) and request bodies in any encoding, spliced with invalid bytes."""

import json

from hypothesis import strategies as st

digits = st.text("0123456789", min_size=1, max_size=30)
numbers = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(
        lambda sign, mantissa, exponent: f"{sign}{mantissa}e{exponent}",
        st.sampled_from(["", "-"]),
        digits,
        st.integers(-600, 600),
    ),
    st.integers(1, 5000).map(lambda n: "9" * n),  # past 4,300 digits Python refuses to parse
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "-0", "0.0"]),
    st.sampled_from(["1700000000000", "9007199254740991", "9007199254740992", "-1", "0"]),
)
strings = st.one_of(
    st.text(max_size=12).map(json.dumps),
    st.text(max_size=12).map(lambda text: json.dumps(text, ensure_ascii=False)),
    st.sampled_from([r'"\u0000"', r'"\ud800"', r'"\udfff\ud800"', '"\\\\"', '"\x7f"', '"ts"']),
)
scalars = st.one_of(st.sampled_from(["null", "true", "false"]), numbers, strings)
keys = st.one_of(st.just('"ts"'), st.just('"a"'), strings)


def _object(pairs):
    return "{" + ",".join(f"{key}:{value}" for key, value in pairs) + "}"


def _array(items):
    return "[" + ",".join(items) + "]"


json_text = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5).map(_array),
        st.lists(st.tuples(keys, inner), max_size=5).map(_object),  # duplicate keys too
    ),
    max_leaves=20,
)
deep = st.builds(
    lambda depth, inner: "[" * depth + inner + "]" * depth, st.integers(1, 3000), json_text
) | st.builds(
    lambda depth, inner: '{"a":' * depth + inner + "}" * depth, st.integers(1, 1500), json_text
)
records = st.lists(st.tuples(keys, scalars), max_size=4).map(_object)
batches = st.lists(records, max_size=30).map(_array) | st.integers(990, 1010).map(
    lambda n: _array(["{}"] * n)
)
documents = st.one_of(json_text, deep, batches)


def _encoded(text, encoding):
    return text.encode(encoding, errors="surrogatepass")


def _spliced(body, junk, where):
    at = int(len(body) * where)
    return body[:at] + junk + body[at:]


encoded = st.builds(
    _encoded, documents, st.sampled_from(["utf-8", "utf-8", "utf-16", "utf-32", "utf-8-sig"])
)
bodies = st.one_of(
    encoded,
    st.builds(  # invalid UTF-8 somewhere in otherwise good JSON
        _spliced,
        encoded,
        st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x00"]),
        st.floats(0, 1),
    ),
    st.binary(max_size=300),
    st.text(max_size=100).map(lambda text: text.encode("utf-8", errors="surrogatepass")),
    st.sampled_from([b"", b" ", b"\n", b"null", b"[]", b"{}", b'""', b"[{}]", b"[1,{}]"]),
)
