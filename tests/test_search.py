"""The exact category search: the published stream, the test vectors, resume, worker count."""

import numpy as np
import pytest

from ofdb_study.errors import ParamError
from ofdb_study.fractals import mt
from ofdb_study.fractals.ifs import format_rows, read_csv
from ofdb_study.fractals.search import SearchSettings, load_search, search, search_to_dir

FIRST_20_N = [5, 3, 2, 5, 4, 3, 2, 4, 3, 5, 5, 4, 5, 5, 3, 3, 2, 3, 2, 2]
CAT0_MAP0 = (
    "1.724223243171234543e-01,-7.311756060787280020e-01,-2.966728035091932281e-01,"
    "-2.777660563660040438e-01,6.115739281576646480e-01,-2.019335022650967648e-01,"
    "1.414134307013419356e-01"
)


@pytest.fixture(scope="module")
def first20(searched):
    assert len(searched.categories) == 20
    return searched


def test_mt_matches_numpy_legacy_stream():
    state = mt.legacy_state(1)
    rs = np.random.RandomState(1)
    assert [mt.randint_masked(state, 2, 8) for _ in range(50)] == [rs.randint(2, 8) for _ in range(50)]
    assert [mt.next_double(state) for _ in range(7)] == list(rs.random_sample(7))
    mt.skip(state, 2 * 12345)
    rs.random_sample(12345)
    out = np.empty(3000)
    mt.fill_doubles(state, out, 3000)
    assert np.array_equal(out, rs.random_sample(3000))
    assert np.array_equal(mt.to_numpy(state).random_sample(5), rs.random_sample(5))


def test_mt_state_roundtrip_through_numpy():
    state = mt.legacy_state(7)
    mt.skip(state, 1001)
    rs = mt.to_numpy(state)
    ref = np.random.RandomState(7)
    ref.random_sample(500)
    ref.randint(0, 2)  # one more word: 1001 in all
    assert np.array_equal(rs.random_sample(10), ref.random_sample(10))


def test_first_twenty_categories_match_the_published_vector(first20):
    assert [c.n_maps for c in first20.categories] == FIRST_20_N
    assert format_rows(first20.categories[0]).splitlines()[0] == CAT0_MAP0
    assert all(f >= 0.2 for f in first20.fill_rates)
    assert first20.candidates == sorted(first20.candidates)
    assert first20.n_candidates == first20.candidates[-1]


def test_probabilities_are_normalised_determinants(first20):
    for c in first20.categories:
        dets = np.abs(c.maps[:, 0] * c.maps[:, 3] - c.maps[:, 1] * c.maps[:, 2])
        np.testing.assert_allclose(c.probs, dets / dets.sum(), rtol=1e-15)
        assert abs(c.probs.sum() - 1) < 1e-12


def test_result_does_not_depend_on_workers_or_batch(first20):
    one = search(20, workers=1, batch=256)
    assert one.candidates == first20.candidates
    assert all(a == b for a, b in zip(one.categories, first20.categories))
    assert np.array_equal(one.state, first20.state)


@pytest.mark.slow
def test_thousandth_category_is_candidate_42655():
    result = search(1000)
    assert result.candidates[-1] == 42_655
    assert result.n_candidates == 42_655
    assert 0.02 < result.acceptance_rate < 0.03


def test_search_dir_official_format_and_resume(tmp_path, first20):
    out = tmp_path / "params"
    search_to_dir(out, 8, workers=2)
    text = (out / "00000.csv").read_text()
    np.savetxt(tmp_path / "ref.csv", first20.categories[0].to_rows(), delimiter=",")
    assert text == (tmp_path / "ref.csv").read_text()
    with pytest.raises(ParamError, match="out"):
        search_to_dir(out, 12)
    resumed = search_to_dir(out, 20, resume=True)
    assert resumed.candidates == first20.candidates
    for i, c in enumerate(first20.categories):
        assert read_csv(out / f"{i:05d}.csv") == c
    back = load_search(out)
    assert back.n_candidates == first20.n_candidates
    assert np.array_equal(back.state, first20.state)
    assert back.histogram.sum() == first20.n_candidates


def test_interrupted_search_resumes_from_last_checkpoint(tmp_path, first20, monkeypatch):
    import ofdb_study.fractals.search as S

    out = tmp_path / "params"
    real_save = S._save_state
    calls = []

    def dying_save(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed after two checkpoints
        return real_save(*args)

    monkeypatch.setattr(S, "_save_state", dying_save)
    with pytest.raises(KeyboardInterrupt):
        search_to_dir(out, 20, batch=64)
    monkeypatch.setattr(S, "_save_state", real_save)
    partial = load_search(out)
    assert 0 < len(partial.categories) < 20
    result = search_to_dir(out, 20, resume=True)
    assert result.candidates == first20.candidates
    assert all(read_csv(out / f"{i:05d}.csv") == first20.categories[i] for i in range(20))


def test_other_settings_change_the_result():
    loose = search(20, SearchSettings(rate=0.1))
    assert loose.n_candidates < 653
    other = search(3, SearchSettings(seed=2))
    assert other.categories[0] != search(1).categories[0]


@pytest.mark.parametrize(
    "kwargs, param",
    [
        (dict(rate=1.5), "rate"),
        (dict(points=1), "points"),
        (dict(size=12, pad=6), "size"),
        (dict(seed=-1), "seed"),
    ],
)
def test_bad_settings(kwargs, param):
    with pytest.raises(ParamError, match=param):
        search(1, SearchSettings(**kwargs))


def test_bad_counts():
    with pytest.raises(ParamError, match="categories"):
        search(0)
    with pytest.raises(ParamError, match="workers"):
        search(1, workers=0)


def test_first_categories_are_searched_once_and_cached(tmp_path, first20, monkeypatch):
    import ofdb_study.fractals.search as S

    calls = []
    real = S.search_to_dir

    def counting(out, n, *args, **kwargs):
        calls.append(n)
        return real(out, n, *args, **kwargs)

    monkeypatch.setattr(S, "search_to_dir", counting)
    monkeypatch.setattr(S, "_cached", {})
    cache = tmp_path / "cache"
    assert S.first_categories(5, cache_dir=cache) == first20.categories[:5]
    assert S.first_categories(3, cache_dir=cache) == first20.categories[:3]
    assert calls == [5]  # the second call was served from this process's cache
    assert S.first_categories(8, cache_dir=cache) == first20.categories[:8]
    assert calls == [5, 8] and len(list(cache.glob("0*.csv"))) == 8  # resumed on disk
    monkeypatch.setattr(S, "_cached", {})  # a new process: read from disk, nothing searched
    assert S.searched(6, cache_dir=cache).candidates[:6] == first20.candidates[:6]
    assert calls == [5, 8, 6] and len(list(cache.glob("0*.csv"))) == 8
    # The default folder is under $OFDB_STUDY_CACHE; a parameter folder is read as it is.
    monkeypatch.setenv("OFDB_STUDY_CACHE", str(tmp_path / "env"))
    assert S.first_categories(2) == first20.categories[:2]
    assert (tmp_path / "env" / "search-seed1" / S.STATE_FILE).is_file()
    assert S.first_categories(4, cache) == first20.categories[:4]


def test_search_without_sched_getaffinity(monkeypatch, first20):
    import os

    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # as on macOS and Windows
    assert search(3).candidates == first20.candidates[:3]


def _search_in(folder: str) -> list:
    from ofdb_study.fractals.search import searched

    return [c.maps.tolist() for c in searched(12, cache_dir=folder).categories[:12]]


def test_processes_needing_the_cache_at_once_take_turns(tmp_path, first20):
    """Two processes asking for the same shared search at once both get it: the second waits for
    the first and reads what it wrote, instead of refusing the locked folder."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        a, b = pool.map(_search_in, [str(tmp_path / "cache")] * 2)
    assert a == b == [c.maps.tolist() for c in first20.categories[:12]]
    assert not (tmp_path / "cache" / ".ofdb_study.lock").exists()
