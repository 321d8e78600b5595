# Kestrel Home support assistant. `make help` lists the targets.
# The two a new user needs:  make chat   and   make test

VENV   ?= .venv
BIN    := $(VENV)/bin
RASA   := $(BIN)/rasa
MODEL  := models/kestrel.tar.gz
# Banking77 for `make bench-nlu`, read in place (never copied into the repo).
BANKING77 ?= ../shared/datasets/banking77
ADVISORY_DB ?= ../shared/datasets/pypa-advisory-db
# Everything `rasa train` reads, and nothing else: the configuration, the
# training data, and the code of the pipeline components, the policy and the
# generator it trains. Editing a channel, the NLG, the tracker store or the
# feedback loop does not retrain.
TRAIN_CODE   := components/nlu components/policies components/generator
TRAIN_INPUTS := config.yml domain.yml shared_names.py components/__init__.py \
                components/legacy_paths.py \
                $(shell find data $(TRAIN_CODE) -type f -not -name '*.pyc' 2>/dev/null | sort) \
                $(wildcard models/generators/history.jsonl)

export TF_CPP_MIN_LOG_LEVEL := 3
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export PYTHONPATH := $(CURDIR)
# credentials.yml reads these; empty leaves the Slack channel off (README, "Slack").
export SLACK_BOT_TOKEN ?=
export SLACK_SIGNING_SECRET ?=
export SLACK_CHANNEL ?=
# empty: each Slack event_id is handled once per server; scale-out sets a redis:// URL.
export SLACK_DEDUPE_URL ?=

.PHONY: help chat install db train actions shell serve console webchat help-pages scale-out test test-fast lint validate audit audit-online clean \
        export review dataset finetune evaluate promote rollback analytics bench bench-train \
        bench-generator bench-feedback bench-nlu bench-oos bench-nlu-cost bench-heldout bench-throughput bench-load bench-threads bench-answers bench-answer-seeds bench-follow-ups bench-short-questions bench-retrieval \
        bench-grounding bench-replies bench-passages bench-server bench-lora

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

chat: install db $(MODEL)  ## set up what is missing, train if needed, chat in the terminal
	@scripts/chat.sh $(MODEL)

install: $(VENV)/.ok  ## create .venv (Rasa 3.6 on Python 3.11, torch CPU)
$(VENV)/.ok: requirements.txt constraints.txt scripts/install.sh
	@scripts/install.sh
	@touch $@

db: install  ## create and seed the demo store database (var/store.db) if missing
	@$(BIN)/python -m actions.seed

train: $(MODEL)  ## train NLU, dialogue and generator into models/kestrel.tar.gz
$(MODEL): $(TRAIN_INPUTS) | install
	$(RASA) train --fixed-model-name kestrel --out models

actions: install db  ## run the action server on :5055 in the foreground
	$(RASA) run actions --port 5055

webchat: webchat/node_modules/.package-lock.json  ## the web chat page's npm packages (npm ci in webchat/)
webchat/node_modules/.package-lock.json: webchat/package.json webchat/package-lock.json
	cd webchat && npm ci --no-audit --no-fund --loglevel=error

help-pages: install  ## the help center as web pages (data/knowledge -> webchat/help/): what citations link to
	$(BIN)/python -m components.generator.help_pages --knowledge data/knowledge --out webchat/help

serve: install db webchat help-pages $(MODEL)  ## action server, rasa run (REST, socket.io, Slack, HTTP API), the web chat page and the help center (needs RASA_AUTH_TOKEN)
	@scripts/serve.sh $(MODEL)

console: install  ## the support team's console on :8800 (README, "The console"); asks for a first lead if there is no user
	@scripts/console.sh

scale-out: install db $(MODEL)  ## nginx + 2 rasa servers on PostgreSQL, Redis and RabbitMQ (README, "Scale-out")
	@scripts/scale_out.sh $(MODEL)

validate: install  ## rasa data validate, failing on warnings
	$(RASA) data validate --fail-on-warnings

test: install webchat  ## the whole test suite (unit, actions, policy, end to end, story tests): what CI runs
	$(BIN)/python -m pytest

test-fast: install  ## the unit tests, without the ones that train the project or start servers (the inner loop)
	$(BIN)/python -m pytest -m "not slow" -q

lint: install  ## ruff (pyproject.toml)
	$(BIN)/ruff check .

# --- The feedback loop (README, "Improving the generator"). TRACKER_STORE_URL
# selects the store; the defaults read var/tracker.db and write exports/, review.csv,
# feedback/ and models/generators/.
FEEDBACK := $(BIN)/python -m components.feedback

export: install  ## export new generated turns and scripted stories (PII redacted)
	$(FEEDBACK) export
review: install  ## write review.csv: fill in corrected_reply for bad replies
	$(FEEDBACK) review
dataset: install  ## build training pairs from the exports and review.csv
	$(FEEDBACK) dataset --corrections review.csv
finetune: install  ## fine-tune the current generator on the dataset
	$(FEEDBACK) finetune
evaluate: install  ## compare candidate and current generator: feedback/report/report.md
	$(FEEDBACK) evaluate --store "$${TRACKER_STORE_URL:-sqlite:///var/tracker.db}"
promote: install  ## make the candidate current if the report says it is better
	$(FEEDBACK) promote
rollback: install  ## make the previous generator current again
	$(FEEDBACK) rollback
analytics: install  ## summary table and plot of the tracker store
	$(FEEDBACK) analytics

bench: bench-train bench-nlu bench-oos bench-nlu-cost bench-heldout bench-retrieval bench-answers bench-answer-seeds bench-follow-ups bench-short-questions bench-grounding bench-replies bench-passages bench-throughput bench-load bench-threads bench-generator bench-feedback bench-console bench-server bench-lora  ## every benchmark: rewrites docs/benchmarks.md and its plots (about 2.5 h on 2 cores)

bench-train: install  ## rasa train per component, archive size, unchanged retrain, cold start -> docs/benchmarks.md
	$(BIN)/python bench/train_cost.py --report docs/benchmarks.md

bench-nlu: install  ## Banking77 accuracy and out-of-scope recall, this pipeline vs `rasa init`'s (BANKING77=path)
	$(BIN)/python bench/nlu_banking77.py --data "$(BANKING77)" --per-intent 10 --runs 3 --cache bench/.results --report docs/benchmarks.md

bench-oos: install  ## out-of-scope scores compared on Banking77 (max-softmax, nearest example, energy, Mahalanobis, the shipped rule) + plot
	$(BIN)/python bench/nlu_oos.py --data "$(BANKING77)" --per-intent 10 --runs 3 --report docs/benchmarks.md

bench-nlu-cost: install  ## `rasa train nlu` time and parse ms on the project's data: this pipeline vs rasa init's and the DIET one before it (about 20 min)
	$(BIN)/python bench/nlu_cost.py --report docs/benchmarks.md

bench-heldout: install $(MODEL)  ## the trained project on held-out messages: right intent, out-of-scope and policy questions to the generator, swept over the rule's q
	$(BIN)/python bench/nlu_heldout.py --model $(MODEL) --report docs/benchmarks.md

bench-answers: install $(MODEL)  ## open-ended questions: retrieval hit@k, correct and sourced answers, vs the ungrounded generator
	$(BIN)/python bench/answers.py --model $(MODEL) --report docs/benchmarks.md

bench-answer-seeds: install  ## held-out correct answers by the retrieval tuning's seed: the noise a data change has to beat (about 8 min)
	$(BIN)/python bench/answer_seeds.py --report docs/benchmarks.md

bench-follow-ups: install $(MODEL)  ## two-turn conversations: a follow-up ("and express?") searched alone vs with the messages before it
	$(BIN)/python bench/follow_ups.py --model $(MODEL) --report docs/benchmarks.md

bench-short-questions: install $(MODEL)  ## keyword-style messages ("return window?", "store hours"): answered from the right article, another, or not at all (about 1 min)
	$(BIN)/python bench/short_questions.py --model $(MODEL) --report docs/benchmarks.md

bench-retrieval: install  ## the retrieval encoder tuned on the known questions (LoRA): hit@1 by learning rate and epoch on questions held apart (about 8 min)
	$(BIN)/python bench/retrieval_tuning.py --report docs/benchmarks.md

bench-passages: install  ## the built-in model trained on passages from scratch (~15 min): does it learn to answer from them?
	$(BIN)/python bench/passage_training.py --steps 800 --report docs/benchmarks.md

bench-replies: install  ## written replies for messages no article answers, by min_reply_similarity: fitting vs not, on held-out messages judged by a person (a minute, no model)
	$(BIN)/python bench/written_replies.py --report docs/benchmarks.md

bench-grounding: install  ## the groundedness check vs a person's labels, on the dev sample (grounding_judged.yml) and the blind test sample (grounding_judged_test.yml): agreement, kappa, unsupported recall (seconds, no model)
	$(BIN)/python bench/grounding_agreement.py --report docs/benchmarks.md

bench-throughput: install $(MODEL)  ## generator tokens/s and ms/reply, batch 1 vs 8 concurrent, per technique, vs transformers.pipeline
	$(BIN)/python bench/generator_throughput.py --model $(MODEL) --runs 5 --report docs/benchmarks.md

bench-threads: install $(MODEL)  ## mixed-load latency with torch's and TensorFlow's thread pools at their defaults vs set (about 6 min)
	$(BIN)/python bench/thread_pools.py --model $(MODEL) --report docs/benchmarks.md

bench-load: install $(MODEL)  ## REST latency p50/p95/p99 at 1, 8, 32 customers, with vs without the GPT policy; then with 5 s think time
	$(BIN)/python bench/load_test.py --model $(MODEL) --runs 3 --report docs/benchmarks.md
	$(BIN)/python bench/load_test.py --model $(MODEL) --runs 3 --think 5 --users 8 32 \
	    --seconds 40 --report docs/benchmarks.md

bench-generator: install $(MODEL)  ## generator size, reply latency, event-loop stall
	$(BIN)/python bench/generator_latency.py --model $(MODEL) --runs 30 --report docs/benchmarks.md

bench-feedback: install $(MODEL)  ## time and peak RSS of export and fine-tune on 10,000 conversations
	$(BIN)/python bench/feedback_scale.py --conversations 10000 --archive $(MODEL) --report docs/benchmarks.md

bench-console: install  ## the console's page times over 10,000 stored conversations
	$(BIN)/python bench/console_scale.py --conversations 10000 --report docs/benchmarks.md

bench-server: install $(MODEL)  ## the inference-server backend vs the in-process generator at 1, 8, 32 conversations, and under the mixed load (about 6 min)
	$(BIN)/python bench/server_backend.py --model $(MODEL) --report docs/benchmarks.md

bench-lora: install  ## LoRA vs full fine-tuning of a 100M-class model (random weights): time and peak RSS
	$(BIN)/python bench/lora_cost.py --report docs/benchmarks.md

audit: install  ## the locked dependencies against the offline PyPA Advisory Database snapshot (ADVISORY_DB=path); fails on a finding docs/security.md does not explain
	$(BIN)/python scripts/audit.py --db $(ADVISORY_DB)
	$(BIN)/python scripts/audit.py --db $(ADVISORY_DB) --constraints scripts/llama_server_constraints.txt

audit-online:  ## pip-audit over the locked dependencies, from its own venv (needs a reachable vulnerability database; docs/security.md)
	test -x .venv-audit/bin/pip-audit || { python3.11 -m venv .venv-audit && \
	  .venv-audit/bin/pip install --quiet pip-audit==2.10.1; }
	.venv-audit/bin/pip-audit --requirement constraints.txt --no-deps --disable-pip

clean:  ## remove trained models, databases and caches (keeps .venv)
	rm -rf models/*.tar.gz var .rasa results .pytest_cache
