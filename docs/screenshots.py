"""Make the README's screenshots: the app's Ask and compare page, and an evaluation report.

    .venv/bin/python docs/screenshots.py --kb /tmp/evalkb --report /tmp/evalreport

--kb: a knowledge base (default: a temporary one with sample_data; with a fine-tuned model in it,
all four answer paths show). --report: a folder written by `kbchat eval --report` (default: a quick
evaluation of 20 sample questions on rag and base, made now). Needs Chromium (`make test` installs
it). Writes docs/compare.png and docs/report.png.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
KBCHAT = str(Path(sys.executable).parent / "kbchat")
sys.path.insert(0, str(ROOT))
QUESTION = "How much does the beginner wheel-throwing course cost?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                "--hide-scrollbars"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait(predicate, timeout: float, what: str):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if value := predicate():
                return value
        except Exception:  # noqa: BLE001 - the page re-ran under us: look again
            pass
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def compare_shot(kb: Path, out: Path, paths: int) -> None:
    port = free_port()
    app = subprocess.Popen([KBCHAT, "--kb", str(kb), "ui", "--port", str(port), "--no-browser"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = chromium(1500, 1150)
    try:
        url = f"http://127.0.0.1:{port}"
        wait(lambda: httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200, 120, "the app")
        driver.get(url)
        box = wait(lambda: driver.find_elements("css selector", "input[aria-label='Your question']"), 60, "the question box")[0]
        box.send_keys(QUESTION)
        wait(lambda: [b for b in driver.find_elements("css selector", "button") if b.text.strip() == "Ask"][0].click() or True,
             30, "the Ask button")
        def finished() -> bool:  # every path's column shows how its answer was made ("How: ...")
            text = driver.execute_script("return document.body.innerText")
            return "$285" in text and "Answering" not in text and text.count("How: ") >= paths

        wait(finished, 300, "every path to finish")
        time.sleep(2)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
        app.terminate()
        app.wait(30)


def report_shot(report: Path, out: Path) -> None:
    driver = chromium(1280, 1600)
    try:
        driver.get((report / "report.html").resolve().as_uri())
        time.sleep(1)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb")
    parser.add_argument("--report")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kb = Path(args.kb) if args.kb else Path(tmp) / "kb"
        if not args.kb:
            subprocess.run([KBCHAT, "--kb", str(kb), "ingest", str(ROOT / "sample_data")], check=True, capture_output=True)
        report = Path(args.report) if args.report else Path(tmp) / "report"
        if not args.report:
            subprocess.run([KBCHAT, "--kb", str(kb), "eval", str(ROOT / "sample_data" / "eval_questions.jsonl"),
                            "--limit", "20", "--paths", "rag,base", "--report", str(report)],
                           check=True, capture_output=True, env={**os.environ})
        from compare.paths import availability
        from kb.store import Store

        with Store(kb) as store:
            paths = sum(why is None for why in availability(store).values())
        compare_shot(kb, ROOT / "docs" / "compare.png", paths)
        report_shot(report, ROOT / "docs" / "report.png")
    print("wrote docs/compare.png and docs/report.png")


if __name__ == "__main__":
    main()
