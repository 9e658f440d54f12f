"""report.html in a real headless browser (Debian's Chromium through its chromedriver).

The page must load from a file with no network, its 3D view must draw the model (pixels
that are not background), switch colourings, and leave no error in the browser console.
``scripts/setup.sh`` installs ``chromium`` and ``chromium-driver``.
"""

from __future__ import annotations

import base64
import io
import shutil

import numpy as np
import pytest

from halex.models import heterostructure
from halex.studies.exchange import Study

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver "
                                "(scripts/setup.sh installs them)")


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # SwiftShader: WebGL in software, as on a machine with no GPU; no network at all
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--use-angle=swiftshader",
              "--enable-unsafe-swiftshader", "--window-size=1280,1600", "--proxy-server=127.0.0.1:9",
              "--proxy-bypass-list=<-loopback>"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _drawn_pixels(driver) -> tuple[int, np.ndarray]:
    """Pixels of the viewer's own rendering that differ from its white background, and their mean colour."""
    from matplotlib.image import imread

    uri = driver.execute_script("return window.halexViewer.pngURI();")
    img = imread(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])), format="png")[..., :3]
    drawn = np.any(img < 0.97, axis=-1)
    return int(drawn.sum()), img[drawn].mean(axis=0)


def _state(driver, before=None) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(d):
        s = d.find_element("id", "halex-viewer").get_attribute("data-state")
        return s if s != "loading" and s != before else False

    return WebDriverWait(driver, 60).until(ready)


def test_report_3d_view_draws_offline_without_console_errors(browser, tmp_path):
    from halex.studies import write_report

    model = heterostructure((2, 2, 2), 1)
    bare = model.copy()
    del bare.arrays["domain"], bare.arrays["layer"]
    study = Study("layers", {}, {}, models={"pristine": model, "no-arrays": bare})
    page = write_report([study], tmp_path)
    assert "cdn" not in page.read_text().lower() and "https://3dmol" not in page.read_text()

    browser.get(page.as_uri())
    assert _state(browser) == "drawn"
    box = browser.find_element("id", "halex-viewer")
    assert box.get_attribute("data-model") == "layers/pristine"
    assert int(box.get_attribute("data-atoms")) == len(model)
    n_element, mean_element = _drawn_pixels(browser)
    assert n_element > 0.02 * 1280 * 520, n_element  # the model fills part of the box, not a blank canvas

    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", "halex-colour")).select_by_value("domain")
    assert "coloured by domain" in browser.find_element("id", "halex-viewer-note").text
    n_domain, mean_domain = _drawn_pixels(browser)
    assert n_domain > 0.02 * 1280 * 520 and np.abs(mean_domain - mean_element).max() > 0.02  # other colours drawn
    legend = browser.find_element("id", "halex-legend").text
    assert "perovskite" in legend and "chalcohalide" in legend

    Select(browser.find_element("id", "halex-model")).select_by_value("layers/no-arrays")
    assert "coloured by element" in browser.find_element("id", "halex-viewer-note").text  # falls back, says so

    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors


def test_report_without_webgl_says_so(tmp_path):
    """A browser with no WebGL gets a sentence, not an empty box (the page's own fallback path)."""
    from halex.report.viewer import viewer_section

    html = "".join(viewer_section({"m": heterostructure((2, 2, 2), 1)}))
    assert "no-webgl" in html and "has no WebGL" in html and "data-state='loading'" in html
    assert viewer_section({}) == []
