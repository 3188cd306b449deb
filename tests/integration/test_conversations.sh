#!/bin/sh
# test_conversations.sh - questions by SMS and the replies to them, through
# the real daemon with smsc-sim as the SMSC. The shipped "not-interested"
# flow asks why (reply 1, 2 or 3) an hour after "Removed from Cart"; replies
# come back as MO from the simulator ("mo FROM TO TEXT", source TON 1, so
# nudged sees "+FROM"). Checked at the SMSC's sink: "2" starts the
# not-my-style follow-up; "maybe" gets one re-prompt and a second unmatched
# reply none (it goes on down the inbound chain, unclaimed, kept in the MO
# log) while " Not My Style " still matches; a reply after the 48 h window
# starts nothing; a newer question replaces an older one for the same
# number; the answer's flow sees the reply in its event; the shipped JOIN
# keyword flow starts once. `nudgectl conversations` lists what is open
# (masked numbers); every decision is a log line and a counter in /metrics.
. tests/integration/lib.sh
NUDGECTL=${NUDGECTL:-$BUILD/nudgectl}
[ -x "$NUDGECTL" ] || fail "$NUDGECTL is not built (make all)"
[ -x "$BUILD/smsc-sim" ] || fail "$BUILD/smsc-sim is not built (make all)"

# wait_texts DESTINATION N: waits up to 10 s for N texts to DESTINATION.
wait_texts() {
	tries=200
	while [ "$(count_texts "$1")" -lt "$2" ]; do
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || return 1
		sleep 0.05
	done
}

# last_text DESTINATION: the text of the newest SMS to DESTINATION.
last_text() {
	texts "$1" | tail -n 1 | cut -f 2-
}

event() {
	api_post /v1/events "$1"
	[ "$HTTP_CODE" = 202 ] || fail "event: HTTP $HTTP_CODE $(cat "$SCRATCH/reply.json")"
}

# reply_from NUMBER TEXT: an SMS from the subscriber; waits until nudged
# has decided about it (one more "inbound" or "conversation" log line).
reply_from() {
	stored=$(count_lines " mo stored " "$SCRATCH/nudged.log")
	sim_command "mo $1 4930555 $2"
	wait_for 10 sh -c "[ \$(grep -c ' mo stored ' $SCRATCH/nudged.log) -gt $stored ]" ||
	    fail "the MO '$2' from $1 never reached nudged"
	sleep 0.3
}

# ctl ARGS...: nudgectl on the scratch store; output in $SCRATCH/ctl.out.
ctl() {
	"$NUDGECTL" -D "$SCRATCH/var" "$@" >"$SCRATCH/ctl.out" 2>&1 ||
	    fail "nudgectl $*: $(cat "$SCRATCH/ctl.out")"
	cat "$SCRATCH/ctl.out" >>"$SCRATCH/all-output.txt"
}

metric() {
	curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" |
	    awk -v name="$1" '$1 == name { print $2 }'
}


# The shipped rules, plus a small question flow whose answer echoes the
# event it was started with, and the same trigger twice for replacement.
mkdir "$SCRATCH/rules"
cp rules/*.xml "$SCRATCH/rules/"
cat >"$SCRATCH/rules/survey.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<flow id="survey" name="Survey" status="live">
  <trigger>
    <metric name="Asked Survey"/>
  </trigger>
  <steps>
    <sms id="ask" class="transactional">
      <text lang="en">How was it? Reply GOOD or BAD.</text>
      <question conversation="survey" reply-window="1h">
        <answer flow="survey-good">
          <word>good</word>
          <word>great</word>
        </answer>
        <answer flow="survey-bad">
          <word>bad</word>
        </answer>
      </question>
    </sms>
  </steps>
</flow>
XML
for answer in good bad; do
	cat >"$SCRATCH/rules/survey-$answer.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<flow id="survey-$answer" name="Survey: $answer" status="live">
  <trigger>
    <reply conversation="survey"/>
  </trigger>
  <steps>
    <sms id="echo" class="transactional">
      <text lang="en">$answer:{{ event.reply }}|{{ event.answer }}|{{ event.conversation }}|{{ event.question_flow }}</text>
    </sms>
  </steps>
</flow>
XML
done

SIM_PORT=$(free_port)
start_sim "$SIM_PORT"
write_config "$SCRATCH/nudged.conf"
sed -i "s|^\[nudged\]\$|[nudged]\norganization_name = Aria Shop\nrules_dir = $SCRATCH/rules|" "$SCRATCH/nudged.conf"
add_link "$SCRATCH/nudged.conf" sim "$SIM_PORT"
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound sim || fail "link sim never bound"
grep -q "flow loaded file=$SCRATCH/rules/not-interested.xml" "$SCRATCH/nudged.log" ||
    fail "the not-interested flow did not load"
grep -q "flow loaded file=$SCRATCH/rules/survey-good.xml" "$SCRATCH/nudged.log" ||
    fail "the scratch survey flows did not load"

S1=393401120001	# answers 2
S2=393401120002	# unmatched twice, then words
S3=393401120003	# answers after the window
S4=393401120004	# texts JOIN
S5=393401120005	# gets a second question

for number in $S1 $S2 $S3 $S5; do
	subscribe "$number"
	event "{\"metric\":\"Removed from Cart\",\"profile\":{\"phone_number\":\"+$number\",\"first_name\":\"ada\",\"language\":\"en\"},\"properties\":{\"ProductName\":\"Linen shirt\",\"URL\":\"https://shop.example/p/7\"}}"
	reply .journeys | grep -q '"flow":"not-interested"' ||
	    fail "no not-interested journey for $number: $(cat "$SCRATCH/reply.json")"
done
advance 1800
sleep 0.5
[ "$(count_texts $S1)" = 0 ] || fail "a question before the 1 h delay: $(texts $S1)"
# Past the delay; if that lands in quiet hours the SMS waits for the
# morning, so move on in 6 h steps until the questions are out.
advance 1860
tries=0
until wait_texts $S5 1; do
	tries=$((tries + 1))
	[ "$tries" -le 4 ] || fail "no question SMS after the delay"
	advance 21600
done
QUESTION="Not interested in Linen shirt? Tell us why: reply 1 too expensive, 2 not my style, 3 later.\\nSTOP to opt out"
for number in $S1 $S2 $S3 $S5; do
	wait_texts $number 1 || fail "no question to $number"
	[ "$(texts $number)" = "$(printf '%s\t%s' $number "$QUESTION")" ] ||
	    fail "question text to $number: $(texts $number)"
done
[ "$(grep -c 'conversation opened .*conversation=not-interested flow=not-interested' "$SCRATCH/nudged.log")" = 4 ] ||
    fail "four questions did not open four conversations"
pass "the question SMS went out once to each subscriber, rendered exactly, and opened a conversation"

ctl conversations
grep -q "^4 conversations$" "$SCRATCH/ctl.out" || fail "nudgectl conversations: $(cat "$SCRATCH/ctl.out")"
grep -q '^+3934••••••01 *not-interested *not-interested *open ' "$SCRATCH/ctl.out" ||
    fail "no open row for S1: $(cat "$SCRATCH/ctl.out")"
ctl conversations --json
[ "$(grep -c '"conversation":"not-interested"' "$SCRATCH/ctl.out")" = 4 ] ||
    fail "nudgectl conversations --json: $(cat "$SCRATCH/ctl.out")"
grep -q '"number":"+3934••••••05".*"reprompted":false,"expired":false' "$SCRATCH/ctl.out" ||
    fail "S5 row in JSON: $(cat "$SCRATCH/ctl.out")"
pass "nudgectl conversations lists the four open ones, masked, as text and JSON"

# S1 answers "2": the not-my-style flow sends its thanks; the conversation
# closes, so a second "2" is no answer any more.
reply_from $S1 2
wait_texts $S1 2 || fail "no follow-up after the answer 2"
[ "$(last_text $S1)" = "Got it, thanks! Our stylists will e-mail you a few picks closer to your taste this week." ] ||
    fail "answer 2 got: $(last_text $S1)"
grep -q "conversation reply decision=matched number=+3934••••••01 conversation=not-interested flow=not-interested .*answer=\"2\" next_flow=not-interested-style" "$SCRATCH/nudged.log" ||
    fail "no matched decision logged for S1"
reply_from $S1 2
sleep 0.5
[ "$(count_texts $S1)" = 2 ] || fail "a reply to a closed conversation sent: $(texts $S1)"
pass "reply 2 started the not-my-style follow-up once; the conversation closed"

# S2: "maybe" gets one re-prompt, "perhaps" nothing, " Not My Style " matches.
reply_from $S2 maybe
wait_texts $S2 2 || fail "no re-prompt after 'maybe'"
[ "$(last_text $S2)" = "Sorry, we did not get that. Please reply 1, 2 or 3." ] ||
    fail "re-prompt text: $(last_text $S2)"
grep -q "conversation reply decision=reprompted number=+3934••••••02" "$SCRATCH/nudged.log" ||
    fail "no reprompted decision logged"
unclaimed=$(count_lines "inbound unclaimed" "$SCRATCH/nudged.log")
reply_from $S2 perhaps
sleep 0.5
[ "$(count_texts $S2)" = 2 ] || fail "a second re-prompt: $(texts $S2)"
grep -q "conversation reply decision=unmatched number=+3934••••••02 .*reason=reprompted-before" "$SCRATCH/nudged.log" ||
    fail "no unmatched decision logged"
[ "$(count_lines "inbound unclaimed" "$SCRATCH/nudged.log")" = $((unclaimed + 1)) ] ||
    fail "the second unmatched reply did not go on down the chain"
ctl mo tail -n 1
grep -q "perhaps" "$SCRATCH/ctl.out" || fail "the unmatched reply is not in the MO log: $(cat "$SCRATCH/ctl.out")"
reply_from $S2 " Not My Style "
wait_texts $S2 3 || fail "no follow-up after ' Not My Style '"
last_text $S2 | grep -q "^Got it, thanks!" || fail "words answer got: $(last_text $S2)"
pass "an unmatched reply got one re-prompt, the next none (left in the MO log); words matched caselessly"

# S5 gets a newer question: it replaces the older conversation.
event "{\"metric\":\"Asked Survey\",\"profile\":{\"phone_number\":\"+$S5\"},\"properties\":{}}"
wait_texts $S5 2 || fail "no survey question"
[ "$(last_text $S5)" = "How was it? Reply GOOD or BAD." ] || fail "survey text: $(last_text $S5)"
grep -q "conversation opened number=+3934••••••05 conversation=survey flow=survey step=0 window_s=3600 replaced=not-interested" "$SCRATCH/nudged.log" ||
    fail "the survey did not replace the older conversation"
ctl conversations
grep -q '^+3934••••••05 *survey *survey *open ' "$SCRATCH/ctl.out" || fail "S5 not on survey: $(cat "$SCRATCH/ctl.out")"
reply_from $S5 2
wait_texts $S5 3 || fail "no re-prompt for the survey"
[ "$(last_text $S5)" = "Sorry, we did not get that. Please reply good or bad." ] ||
    fail "survey re-prompt: $(last_text $S5)"
reply_from $S5 GREAT
wait_texts $S5 4 || fail "no survey follow-up"
[ "$(last_text $S5)" = "good:GREAT|great|survey|survey" ] || fail "survey follow-up: $(last_text $S5)"
pass "a newer question replaced the older; the answer's flow got reply, answer, conversation and question_flow"

# S4 texts JOIN: the shipped welcome-series keyword flow, once ever. The
# welcome is marketing, so S4 signed up (a form) first.
subscribe $S4
reply_from $S4 join
wait_texts $S4 1 || fail "no welcome after JOIN"
last_text $S4 | grep -q "^Welcome to Aria Shop texts!" || fail "welcome: $(last_text $S4)"
grep -q "conversation keyword decision=started number=+3934••••••04 keyword=JOIN flow=welcome-series" "$SCRATCH/nudged.log" ||
    fail "no keyword decision logged"
reply_from $S4 JOIN
sleep 0.5
[ "$(count_texts $S4)" = 1 ] || fail "a second welcome: $(texts $S4)"
grep -q "conversation keyword decision=not-entered number=+3934••••••04" "$SCRATCH/nudged.log" ||
    fail "the second JOIN was not logged as not entered"
pass "JOIN started the keyword flow once; the second JOIN started nothing (re-entry once)"

# S3 answers after the 48 h window: nothing starts, the row goes.
advance 176400
sleep 0.5
before=$(count_texts $S3)
reply_from $S3 1
sleep 0.5
[ "$(count_texts $S3)" = "$before" ] || fail "a reply after the window sent: $(texts $S3)"
grep -q "conversation reply decision=expired number=+3934••••••03" "$SCRATCH/nudged.log" ||
    fail "no expired decision logged"
ctl conversations --all
grep -q "+3934••••••03" "$SCRATCH/ctl.out" && fail "the expired row was kept: $(cat "$SCRATCH/ctl.out")"
pass "a reply after the reply window started nothing and dropped the conversation"

[ "$(metric 'nudge_conversation_replies_total{decision="matched"}')" = 3 ] || fail "matched counter"
[ "$(metric 'nudge_conversation_replies_total{decision="reprompted"}')" = 2 ] || fail "reprompted counter"
[ "$(metric 'nudge_conversation_replies_total{decision="unmatched"}')" = 1 ] || fail "unmatched counter"
[ "$(metric 'nudge_conversation_replies_total{decision="expired"}')" = 1 ] || fail "expired counter"
[ "$(metric 'nudge_conversations_opened_total')" = 5 ] || fail "opened counter"
[ "$(metric 'nudge_conversations_replaced_total')" = 1 ] || fail "replaced counter"
[ "$(metric 'nudge_keyword_flows_total{decision="started"}')" = 1 ] || fail "keyword counter"
grep -q "39340112000" "$SCRATCH/all-output.txt" && fail "nudgectl printed a whole number"
pass "every decision counted in /metrics; nudgectl never printed a whole number"

# A clean stop (under ASan this is also the leak check).
stop_pid "$NUDGED_PID" 10
[ "$STOP_STATUS" = 0 ] || fail "nudged stopped with status $STOP_STATUS"
pass "nudged stopped cleanly"
