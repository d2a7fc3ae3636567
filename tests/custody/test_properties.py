"""Properties of sealed clips: what is sealed verifies, and no single bit flip goes unnoticed."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.clip import MemorySegments, decrypt_segments, seal_clip
from custody.manifest import ClipInfo, EventRecord, parse_manifest
from custody.verify import verify_clip

DEVICE = Ed25519PrivateKey.generate()
AGENCY = X25519PrivateKey.generate()
INFO = ClipInfo("cam-7", "SN-7", "officer-9", "0.1.0", 1_700_000_000_000_000_000, 5_000)

segment_lists = st.lists(st.binary(max_size=300), max_size=6)
events = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=6),
        st.builds(
            EventRecord,
            kind=st.sampled_from(["marker", "gnss", "trigger"]),
            wall_ns=st.integers(min_value=0, max_value=2**62),
            monotonic_ns=st.integers(min_value=0, max_value=2**62),
            data=st.dictionaries(st.text(max_size=5), st.integers(-(2**31), 2**31), max_size=3),
        ),
    ),
    max_size=3,
)


@settings(max_examples=30, deadline=None)
@given(segment_lists, events, st.booleans())
def test_a_sealed_clip_always_verifies_and_decrypts(
    plaintexts: list[bytes], clip_events: list[tuple[int, EventRecord]], recovered: bool
) -> None:
    clip = seal_clip(
        plaintexts,
        device_key=DEVICE,
        agency_public=AGENCY.public_key(),
        info=INFO,
        events=clip_events,
        recovered=recovered,
    )
    source = MemorySegments(clip.segments)
    report = verify_clip(source, clip.manifest, DEVICE.public_key(), AGENCY)
    assert report.ok, report.first_failure
    manifest = parse_manifest(clip.manifest)
    assert list(decrypt_segments(source, manifest, AGENCY)) == plaintexts


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=4), st.data())
def test_any_single_bit_flip_in_a_sealed_clip_is_detected(
    plaintexts: list[bytes], data: st.DataObject
) -> None:
    clip = seal_clip(plaintexts, device_key=DEVICE, agency_public=AGENCY.public_key(), info=INFO)
    files = {"manifest": clip.manifest} | {str(i): blob for i, blob in clip.segments.items()}
    target = data.draw(st.sampled_from(sorted(files)), label="file")
    bit = data.draw(st.integers(min_value=0, max_value=len(files[target]) * 8 - 1), label="bit")
    flipped = bytearray(files[target])
    flipped[bit // 8] ^= 1 << (bit % 8)
    files[target] = bytes(flipped)
    manifest = files.pop("manifest")
    segments = MemorySegments({int(name): blob for name, blob in files.items()})
    with_key = data.draw(st.booleans(), label="with agency key")
    report = verify_clip(segments, manifest, DEVICE.public_key(), AGENCY if with_key else None)
    assert not report.ok
