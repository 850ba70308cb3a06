"""The Train page in Debian's chromium: refuse a bypassed bound, submit a tiny job, watch it train,
open the new model in the explorer (no restart)."""

from __future__ import annotations

import urllib.parse

import pytest

from backend.autoencoder.config import TrainConfig
from backend.jobs import JobStore
from tests.conftest import PROJECT, copy_demo_images
from tests.e2e.browser import start_app, stop_app

TINY = TrainConfig(arch="resnet18", latent=1, epochs=3, split=0.25, image_size=64, channels=16)


@pytest.fixture()
def train_app(tmp_path):
    """A data root with 12 demo training images and one (unencoded) model, the app on it."""
    root = tmp_path / "root"
    images = copy_demo_images(root / "images" / "train_1eV")
    names = {p.name for p in images.glob("*.png")}
    rows = [line for line in (PROJECT / "embeddings" / "unencoded_window1eV_width1_embedding.csv").read_text().splitlines()
            if line.split(",")[0] in names]
    (root / "embeddings").mkdir()
    (root / "embeddings" / "unencoded_window1eV_width1_embedding.csv").write_text(
        "filename,z0,z1\n" + "\n".join(rows) + "\n")
    proc, url = start_app(root, env={"BANDSCAPE_PREWARM": "0", "REDIS_URL": ""})
    yield url, root
    stop_app(proc)


@pytest.fixture()
def page(browser):
    pg = browser.new_page(viewport={"width": 1500, "height": 1000})
    yield pg
    pg.close()


def test_train_a_model_and_open_it_in_the_explorer(page, train_app):
    url, root = train_app
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/train")
    page.wait_for_selector("#train-grid-summary", timeout=60_000)
    assert page.input_value("#train-folder") == "images/train_1eV"
    assert page.locator("#train-grid-summary").inner_text().startswith("72 models")  # the 1 eV third of 216

    # a value the form does not offer (sent as if the page were edited) is refused by the server
    page.evaluate("""() => { const s = document.getElementById('train-image-size');
                             const o = document.createElement('option'); o.value = '50'; o.text = '50';
                             s.appendChild(o); }""")
    page.select_option("#train-image-size", "50")
    page.click("#train-submit")
    page.wait_for_selector("#train-submit-error", timeout=10_000)
    refusal = page.inner_text("#train-submit-error")
    assert refusal.startswith("image_size must be a multiple of 32") and refusal.endswith("got 50")
    assert not list(JobStore(root).dir.glob("*.json"))

    # a tiny real job
    page.fill("#train-epochs", "3")
    page.fill("#train-split", "0.25")
    page.select_option("#train-image-size", "128")
    # the default trunk (the shipped encoder's width) starts from the shipped encoder; another trains from scratch
    assert page.input_value("#train-channels") == "16"
    page.wait_for_function("() => (document.getElementById('train-estimate')?.innerText || '')"
                           ".includes('from the shipped encoder')", timeout=10_000)
    page.select_option("#train-latent", "1")
    page.select_option("#train-image-size", "64")
    page.wait_for_function("() => (document.getElementById('train-estimate')?.innerText || '')"
                           ".includes('from scratch')", timeout=10_000)
    page.click("#train-submit")
    page.wait_for_selector("#train-submit-result", timeout=10_000)
    assert "Queued 1 job" in page.inner_text("#train-submit-result")
    row = f"tr.job-row:has-text('{TINY.model_id}')"
    page.wait_for_selector(row, timeout=10_000)

    # progress while it runs, then done
    page.wait_for_selector(f"{row}[data-state='running']", timeout=30_000)
    page.wait_for_function("() => /epoch [1-3]\\/3/.test(document.getElementById('train-detail-progress')?.innerText || '')",
                           timeout=60_000)
    page.wait_for_selector(f"{row}[data-state='done']", timeout=120_000)
    page.wait_for_selector("#train-recon-img", timeout=10_000)
    page.wait_for_function("() => { const im = document.getElementById('train-recon-img');"
                           " return im && im.complete && im.naturalWidth > 0; }", timeout=10_000)
    assert page.locator("#train-loss .scatterlayer .trace").count() >= 2  # batch + train (+ validation) curves
    assert page.text_content("#train-loss .ytitle") == "NT-Xent loss"  # the objective's loss, by name

    # a second submit of the same model returns the same job
    page.click("#train-submit")
    page.wait_for_function("() => (document.getElementById('train-submit-result')?.innerText || '')"
                           ".includes('already submitted')", timeout=10_000)

    # the selected job is in the address: a reload shows the same job
    assert "job=" in page.url
    page.reload()
    page.wait_for_selector(f"{row}.table-active[data-state='done']", timeout=30_000)

    # the new model is in the explorer, without a restart
    page.wait_for_selector("#train-open-explorer", timeout=10_000)
    page.click("#train-open-explorer")
    page.wait_for_url(f"**/?{urllib.parse.urlencode({'model': TINY.model_id})}*", timeout=10_000)
    page.wait_for_selector("#explore-summary-text", timeout=60_000)
    assert page.input_value("#explore-model") == TINY.model_id
    assert "12 materials" in page.inner_text("#explore-summary")
    assert page.inner_text("#data-root-banner").endswith("· 2 models")  # was 1 before the job
    assert errors == []


def test_a_window_the_images_are_not_is_refused_naming_both(page, train_app):
    """images/train_1eV holds ±1 eV images: a ±3 eV model of them is said to be wrong while the form
    is filled in, and the server refuses it (one model or a grid), queueing nothing."""
    url, root = train_app
    page.goto(url + "/train")
    page.wait_for_selector("#train-grid-summary", timeout=60_000)
    assert page.input_value("#train-folder") == "images/train_1eV" and page.input_value("#train-window") == "1"
    page.fill("#train-window", "3")
    page.wait_for_selector("#train-form-problem", timeout=10_000)
    assert "±1 eV" in page.inner_text("#train-form-problem") and "±3 eV" in page.inner_text("#train-form-problem")
    for button in ("#train-submit", "#train-grid-submit"):
        page.click(button)
        page.wait_for_selector("#train-submit-error", timeout=10_000)
        refusal = page.inner_text("#train-submit-error")
        assert "images/train_1eV are drawn for ±1 eV" in refusal and "window asked is ±3 eV" in refusal, refusal
        page.click("#train-submit-error .btn-close")
    assert not list(JobStore(root).dir.glob("*.json"))
    page.fill("#train-window", "1")
    page.wait_for_selector("#train-form-problem", state="detached", timeout=10_000)


def test_add_your_materials_then_train_on_them(page, train_app, tmp_path):
    """Step one of the Train page: uploaded band structures become band data, display plots and
    training images in the data root, one line per file that failed, and their folders are
    offered for training at once."""
    import json

    from backend.data.importing import read_uploads
    from tests.test_importing import symm_line

    url, root = train_app
    bs = tmp_path / "my_material_bandstructure.json"
    bs.write_text(json.dumps(symm_line().as_dict()))
    assert read_uploads([(bs.name, bs.read_bytes())])[0], "the JSON is a band structure pymatgen reads"
    bad = tmp_path / "broken_EIGENVAL"
    bad.write_text("this is not an EIGENVAL\n")
    page.goto(url + "/train")
    page.wait_for_selector("#train-import-upload")
    page.set_input_files("#train-import-upload input[type=file]", [str(bs), str(bad)])
    page.wait_for_selector("#train-import-summary", timeout=120_000)
    status = page.inner_text("#train-import-status")
    assert "1 of 2 materials added" in status and "broken_EIGENVAL" in status
    name = read_uploads([(bs.name, bs.read_bytes())])[0][0].name
    for w in (1, 2, 3):
        assert (root / "images" / f"train_{w}eV" / f"{name}.png").is_file()
        assert (root / "images" / f"display_{w}eV" / f"{name}.png").is_file()
    assert (root / "bands" / f"{name}.npz").is_file()
    options = page.eval_on_selector_all("#train-folder option", "els => els.map(e => e.value)")
    assert any("train_3eV" in o for o in options)
