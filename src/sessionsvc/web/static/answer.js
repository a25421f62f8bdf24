// The "Was this you?" page: a button posts the link's answer (a GET never acts).
const app = document.getElementById("app");
const form = document.getElementById("answer");
const result = document.getElementById("result");
const failure = document.getElementById("answer-error");

const DONE = {
  me: "Thank you. This device is now one you know.",
  not_me: "That device is signed out. Change your password now.",
};
const ERRORS = {
  ANSWER_ALREADY_GIVEN: "This question has been answered already. Nothing else needs doing.",
  ANSWER_TOKEN_EXPIRED: "This link has expired. Sign in and review your devices instead.",
  INVALID_ANSWER_TOKEN: "This link is not valid. Sign in and review your devices instead.",
};

async function submit(event) {
  event.preventDefault();
  const everywhere = event.submitter?.value === "1";
  for (const button of form.querySelectorAll("button")) button.disabled = true;
  failure.hidden = true;
  let response;
  try {
    response = await fetch(`${app.dataset.api}/security/answers`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        token: form.dataset.token,
        answer: form.dataset.answer,
        signOutEverywhere: everywhere,
      }),
    });
  } catch {
    response = null;
  }
  const body = response ? await response.json().catch(() => ({})) : {};
  if (response?.ok) {
    result.textContent = everywhere ? "Every device is signed out. Change your password now." : DONE[form.dataset.answer];
  } else if (body.code in ERRORS) {
    result.textContent = ERRORS[body.code];
  } else {
    failure.textContent = "Your answer could not be sent. Try again in a moment.";
    failure.hidden = false;
    for (const button of form.querySelectorAll("button")) button.disabled = false;
    return;
  }
  form.hidden = true;
  result.hidden = false;
  result.focus();
}

form?.addEventListener("submit", submit);
