"""Real browser tests of what a lesson needs to be true and easy to drive (issue 12): the verdicts
of the ML Crash Course learning-rate exercise, and keyboard shortcuts wherever focus is."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.conftest import OWNER
from tests.helpers import ARTIFACTS, focus_page, http_json, trained

pytestmark = pytest.mark.browser


def descent(page, server, query: str) -> None:
    page.goto(server + "/descent?" + query)
    page.wait_for_function("document.querySelectorAll('#numbers dd').length > 0")


def steps(page, n: int) -> str:
    start = int(page.locator("#counter").text_content())
    for _ in range(n):
        page.keyboard.press(" ")
    page.wait_for_function(f"document.getElementById('counter').textContent === '{start + n}'")
    return page.locator("#verdict").text_content()


@pytest.mark.parametrize("lr, n, expected, diverging", [
    (0.08, 6, "slow but getting there", False),                    # crawls towards the minimum
    (0.5, 1, "reached the minimum in 1 step ✓", False),            # the ideal rate: one step
    (0.9, 6, "overshooting back and forth, but getting closer", False),
    (1.05, 6, "diverging ✗", True),                                # every step further away
])
def test_the_four_rates_of_the_crash_course_exercise_get_the_verdict_it_teaches(page, server, lr, n, expected, diverging):
    descent(page, server, f"tab=parabola&lr={lr}")
    verdict = steps(page, n)
    assert expected in verdict, verdict
    assert (page.locator("#verdict").get_attribute("data-state") == "diverged") is diverging
    if lr == 1.05:  # and it stays diverging, not "oscillating", however long the class keeps stepping
        assert "diverg" in steps(page, 30) and "oscillating" not in page.locator("#verdict").text_content()
        where = page.locator("#offplot")  # the ball left the plot: it is pinned at the edge, and says where
        assert where.is_visible() and "w = " in where.text_content(), where.text_content()
    else:
        expect(page.locator("#offplot")).to_have_text("")
    assert page.errors == []


def test_line_fit_at_0_08_is_getting_closer_not_oscillating(page, server):
    """Its loss falls at every step (a and b zig-zag across the narrow valley of the MSE while
    they do): the verdict says it gets there, never that it is stuck oscillating."""
    descent(page, server, "tab=line_fit&lr=0.08")
    for n in (4, 8, 20):
        verdict = steps(page, n)
        assert ("getting closer" in verdict or "getting there" in verdict) and "oscillating" not in verdict, verdict


def test_space_steps_after_using_the_slider_and_after_clicking_step(page, server):
    descent(page, server, "tab=parabola&lr=0.08")
    page.locator("#lr-slider").click()  # the teacher moved the learning rate with the mouse...
    page.wait_for_function("document.getElementById('counter').textContent === '0'")
    lr = page.locator("#lr-number").input_value()
    assert steps(page, 1) is not None  # ...and Space still steps
    page.click("#step")  # focus stays on the STEP button
    page.wait_for_function("document.getElementById('counter').textContent === '2'")
    page.keyboard.press(" ")  # one step, not a click plus a step
    page.wait_for_function("document.getElementById('counter').textContent === '3'")
    time.sleep(0.3)
    assert page.locator("#counter").text_content() == "3" and page.locator("#lr-number").input_value() == lr
    page.locator("#lr-slider").focus()
    page.keyboard.press("PageDown")  # a presentation clicker, with focus on the slider
    page.wait_for_function("document.getElementById('counter').textContent === '4'")
    page.locator("#lr-number").focus()
    page.keyboard.press("r")  # typing in a field is typing, not a shortcut
    expect(page.locator("#counter")).to_have_text("4")


def test_session_shortcuts_after_clicking_a_checkbox(page, server):
    page.goto(server + "/session")
    page.click("#start")
    page.wait_for_function("document.getElementById('code').textContent.length === 5")
    page.click("#reveal")  # hide the guesses with the mouse: focus is on the checkbox now
    assert not page.locator("#reveal").is_checked()
    page.keyboard.press("g")
    page.wait_for_function("document.getElementById('reveal').checked")  # (after the server's echo of both)
    page.keyboard.press("Shift+P")
    page.wait_for_function("document.documentElement.classList.contains('projector')")
    page.keyboard.press("Shift+P")


AS_OWNER = {"X-Owner-Token": OWNER}


def test_shift_p_on_train_is_projector_mode_only_and_the_lesson_dialog_names_its_controls(page, server):
    job = trained(server, {"architecture": "mlp_16", "train_size": 640, "val_size": 500}, AS_OWNER)["id"]
    page.goto(server + "/")
    page.evaluate(f"localStorage.setItem('neuronlab.owner', '{OWNER}'); localStorage.setItem('neuronlab.train.job', '{job}')")
    page.goto(server + "/train")
    page.locator("#job-status[data-status='done']").wait_for()
    page.keyboard.press("Shift+P")
    page.wait_for_function("document.documentElement.classList.contains('projector')")
    time.sleep(0.5)
    assert page.locator("#job-status").get_attribute("data-status") == "done"
    page.keyboard.press("Shift+P")
    page.click("#lesson-toggle")
    labels = page.locator("#lesson-controls label").all_text_contents()
    assert any("Set-up panel" in label for label in labels) and not any("undefined" in label for label in labels), labels
    page.locator("#lesson-controls input").first.check()
    expect(page.locator("#lesson-link")).to_have_value(re.compile("hide=setup"))
    assert page.errors == []


def api(server: str, method: str, path: str, body=None, headers=None, raw=None, ctype="application/json"):
    return http_json(server + path, method, body, headers, raw, ctype)


def post_drawing(server: str, code: str, key: str, digit: str) -> dict:
    from tests.helpers import draw_digit, encode
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"d.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + encode(draw_digit(digit)) + f"\r\n--{boundary}--\r\n".encode()
    return api(server, "POST", f"/api/sessions/{code}/drawings", raw=body, ctype=f"multipart/form-data; boundary={boundary}",
               headers={"X-Student-Key": key})


def test_nine_students_fit_one_projector_screen_and_hidden_guesses_hide_right_and_wrong(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 720}, bypass_csp=True)
    page = context.new_page()
    page.goto(server + "/session?projector=1")
    page.click("#start")
    page.wait_for_function("document.getElementById('code').textContent.length === 5")
    code = page.locator("#code").text_content()
    join_url = page.locator("#join-url").text_content()
    assert "127.0.0.1" not in join_url or page.locator("#join-warning").is_visible(), join_url  # never a silent localhost
    for i in range(9):
        student = api(server, "POST", f"/api/sessions/{code}/students", {"name": "Bob"})
        drawing = post_drawing(server, code, student["student_key"], str(i))
        api(server, "PUT", f"/api/sessions/{code}/drawings/{drawing['id']}/label", {"label": i},
            headers={"X-Student-Key": student["student_key"]})
    page.wait_for_function("document.querySelectorAll('#gallery .tile .truth').length === 9")
    page.screenshot(path=str(ARTIFACTS / "session-nine-students-1280.png"))
    boxes = [page.locator("#gallery .tile").nth(i).bounding_box() for i in range(9)]
    first_row = [b for b in boxes if abs(b["y"] - boxes[0]["y"]) < 2]
    assert len(first_row) >= 6, len(first_row)  # a dense gallery
    assert all(b["y"] + b["height"] <= 720 for b in boxes), boxes  # all nine on one screen
    badge = page.locator("#join-box").bounding_box()
    assert page.locator("#code").is_visible() and badge["height"] < 100  # the code stays, as a corner badge
    assert not any(b["x"] + b["width"] > badge["x"] and b["y"] + b["height"] > badge["y"] for b in boxes)  # over no tile
    names = page.locator("#gallery .student").all_text_contents()
    assert sorted(names)[:3] == ["Bob", "Bob 2", "Bob 3"]
    page.screenshot(path=str(ARTIFACTS / "session-nine-students-1280.png"))

    page.keyboard.press("g")  # hide the guesses
    page.wait_for_function("[...document.querySelectorAll('.tile-guess')].every(g => g.textContent === '?')")
    expect(page.locator("#gallery .tile.right, #gallery .tile.misread")).to_have_count(0)
    assert not any(("✓" in t or "✗" in t) for t in page.locator("#gallery .truth").all_text_contents())
    page.keyboard.press("g")
    page.wait_for_function("document.querySelectorAll('#gallery .tile.right, #gallery .tile.misread').length === 9")

    page.click("#end")  # ending asks what becomes of the drawings
    expect(page.locator("#end-dialog")).to_be_visible()
    page.get_by_role("button", name="End and keep the drawings").click()
    page.wait_for_function("document.getElementById('end').disabled")
    assert api(server, "GET", f"/api/sessions/{code}")["ended"]
    context.close()


def test_a_race_is_ranked_by_accuracy_on_unseen_images_not_the_last_batch(page, server):
    page.goto(server + "/train?train_size=1000&race=0.001,0.1&optimizer=sgd&architecture=mlp_16&epochs=2")
    page.locator("#train").click()
    page.locator("#job-status[data-status='done']").wait_for()
    runs = page.locator("#runs li").all_text_contents()
    assert runs[0].startswith("★ lr 0.1: test accuracy") and runs[1].startswith("lr 0.001: test accuracy"), runs
    assert page.errors == []


def test_split_the_data_with_its_defaults_learns_in_seconds_and_shows_each_neurons_map(page, server):
    page.goto(server + "/descent?tab=split")
    page.wait_for_function("document.getElementById('numbers').children.length > 0")
    assert page.locator("#layers").input_value() == "4,4" and page.locator("#lr-number").input_value() == "0.3"
    page.click("#run")
    page.wait_for_function("parseInt(document.querySelectorAll('#numbers dd')[1].textContent) >= 95")
    page.click("#run")
    assert int(page.locator("#counter").text_content()) <= 300  # epochs (the engine test pins it: 100 at most)
    rows = page.locator("#neuron-layers .neuron-row")
    expect(rows).to_have_count(2)
    for i in range(2):
        expect(rows.nth(i).locator("canvas")).to_have_count(4)
    expect(page.locator("#neurons")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "descent-split-neurons.png"))
    assert page.errors == []


def test_a_neuron_the_slides_0_96_one_real_training_step_and_8_batches(page, server):
    page.goto(server + "/neuron?tab=neuron")
    page.wait_for_function("document.getElementById('neuron-output').textContent.length > 0")
    expect(page.locator("#neuron-output")).to_have_text("sigmoid(3.2) = 0.96")
    assert "2 × 0.4 + 3 × 0.6 + 1 × 0.4 + 0.2 = 3.2" in page.locator("#weighted-sum").text_content()
    page.locator("#activation").select_option("relu")
    page.wait_for_function("document.getElementById('neuron-output').textContent.startsWith('relu(3.2) = 3.20')")
    assert "activation=relu" in page.url  # a lesson link keeps it

    page.click("[data-tab=step]")
    page.wait_for_function("document.getElementById('step-count').textContent === '1'")
    first = page.locator("#step-loss").text_content()
    focus_page(page)
    page.keyboard.press(" ")  # STEP twice quickly: each from the weights the one before left
    page.keyboard.press(" ")
    page.wait_for_function("document.getElementById('step-count').textContent === '3'")
    losses = page.locator("#step-loss").text_content()
    assert losses != first and first.split("→")[1].split()[0] not in losses.split("→")[1], (first, losses)
    chain = page.locator("#step-chain").text_content()
    assert "∂L/∂w2[0][0]" in chain and "autograd" in chain

    page.click("[data-tab=batches]")
    page.wait_for_function("document.getElementById('batch-answer').textContent.length > 0")
    assert page.locator("#batch-answer").text_content().startswith("8 batches an epoch (the last one has 104 samples)")
    expect(page.locator("#batch-boxes li")).to_have_count(8)
    page.locator("#batch-epochs").fill("2")
    page.wait_for_function("document.getElementById('batch-answer').textContent.includes('16 steps')")
    page.click("#batch-play")  # counted as the training lab counts: the 8th batch is step 8, then epoch 2
    page.wait_for_function("document.getElementById('batch-counter').textContent === 'Epoch 2/2 · batch 8/8 · step 16/16'")

    page.click("[data-tab=loss]")
    page.wait_for_function("document.getElementById('ce-line').textContent.includes('log')")
    assert page.locator("#one-hot").text_content().endswith("(1, 0, 0)")
    page.click("[data-tab=line]")
    page.locator("#line-a").fill("2")
    page.locator("#line-b").fill("1")
    page.wait_for_function("document.getElementById('line-mse').textContent.includes('✓')")  # 5 = 2·2 + 1, 9 = 2·4 + 1
    assert "start=2,1" in page.locator("#to-descent").get_attribute("href")
    page.click("[data-tab=activations]")
    page.wait_for_function("document.querySelectorAll('#act-legend li').length === 6")
    assert page.errors == []


def test_try_to_break_the_drawing_turn_it_and_the_answer_changes_then_as_drawn_again(page, server):
    from tests.helpers import stroke
    page.goto(server + "/draw")
    page.wait_for_function("document.querySelectorAll('#bars li').length === 10")
    stroke(page, [(0.25, 0.15), (0.75, 0.15), (0.45, 0.9)])  # a 7
    page.wait_for_function("document.getElementById('verdict-label').textContent === '7'")
    page.click("#robust summary")
    page.locator("#r-rotate").fill("90")  # the 7 lying on its side
    page.wait_for_function("document.getElementById('verdict-label').textContent !== '7'")
    assert page.locator("#r-rotate").evaluate("e => e.nextElementSibling.textContent") == "90"
    page.locator("#r-rotate").fill("0")
    page.locator("#r-noise").fill("30")  # noise: still answered, whatever it reads
    page.wait_for_function("document.getElementById('verdict').dataset.state === 'prediction'")
    page.click("#r-reset")
    page.wait_for_function("document.getElementById('verdict-label').textContent === '7'")
    assert page.errors == []


def test_the_first_filters_play_back_over_training_time(page, server):
    state = trained(server, {"architecture": "mnist_recipe", "train_size": 1280, "val_size": 500, "batch_size": 64}, AS_OWNER)
    model = state["model_ids"][0]
    page.goto(server + f"/filters?tab=filters&model={model}")
    page.locator("#filter-history:not([hidden])").wait_for()
    assert page.locator("#history-step").get_attribute("max") == "4"  # the start, three quarters, the end
    expect(page.locator("#history-when")).to_have_text("epoch 1 · step 20")
    page.locator("#history-step").fill("0")
    page.wait_for_function("document.getElementById('history-when').textContent === 'epoch 0 · step 0'")
    expect(page.locator("#history-filters .history-maps canvas")).to_have_count(32)
    page.click("#history-play")
    page.wait_for_function("document.getElementById('history-when').textContent.includes('step 20')")
    page.goto(server + "/filters?tab=filters&model=digits")  # shipped: no history, no empty panel
    page.locator("#filter-layers h3").first.wait_for()
    assert page.locator("#filter-history").is_hidden()
    assert page.errors == []


def saved_png(page, click: str):
    from PIL import Image
    with page.expect_download() as download:
        page.click(click)
    path = download.value.path()
    with Image.open(path) as img:
        return download.value.suggested_filename, img.size, img.convert("RGB")


def test_a_lab_report_of_the_descent_and_of_a_training_run(page, server):
    descent(page, server, "tab=parabola&lr=0.9")
    steps(page, 5)
    name, size, img = saved_png(page, "#report")
    img.save(ARTIFACTS / "report-descent.png")
    assert name.startswith("neuronlab-descent-") and name.endswith(".png")
    assert size[0] == 1400 and size[1] > 600
    assert len(img.resize((70, 40)).getcolors(4096)) > 20  # plots, not a blank sheet
    assert page.locator("#print").is_visible()

    page.goto(server + "/train")
    page.evaluate("localStorage.clear()")
    page.goto(server + "/train?train_size=1000&architecture=mlp_16&epochs=1")
    page.click("#train")
    page.locator("#job-status[data-status='done']").wait_for()
    name, size, img = saved_png(page, "#report")
    img.save(ARTIFACTS / "report-train.png")
    assert name.startswith("neuronlab-train-") and size[1] > 900  # settings, two curves, the confusion matrix
    assert page.errors == []
