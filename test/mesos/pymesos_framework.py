"""A small Mesos framework written against pymesos (a third-party v1 HTTP scheduler driver).

Usage: pymesos_framework.py HOST:PORT TASKS SUMMARY_JSON

MESOS_PRINCIPAL and MESOS_SECRET, when set, are sent as HTTP Basic credentials (pymesos' own
principal/secret). MESOS_DEADLINE_S overrides the 60 s deadline, MESOS_TASK_CPUS the 0.1 cpus of
each task. An offer too small for a task it still wants is declined for 1 s only (capacity
comes back as other work ends); once every task is launched, offers are declined for an hour.

It subscribes, launches TASKS command tasks on the offers it gets (declining offers it does not
need), acknowledges every status update that carries a uuid, reconciles once all tasks finished
(implicitly), then tears the framework down and writes what it saw to SUMMARY_JSON. Exit status
0 only if every task reached TASK_FINISHED before the deadline.
"""

import json
import logging
import os
import sys
import threading
import time
import uuid

from pymesos import MesosSchedulerDriver, Scheduler

CPUS = float(os.environ.get("MESOS_TASK_CPUS", "0.1"))
MEM = 32
DEADLINE_S = float(os.environ.get("MESOS_DEADLINE_S", "60"))


def scalar(offer, name):
    return sum(r.get("scalar", {}).get("value", 0) for r in offer.get("resources", []) if r["name"] == name)


class Framework(Scheduler):
    def __init__(self, tasks):
        self.wanted = tasks
        self.lock = threading.Lock()
        self.launched = []
        self.states = {}
        self.history = []
        self.acked = []
        self.declined = []
        self.offer_hosts = []
        self.framework_id = None
        self.reconciled = []
        self.reconcile_sent = False
        self.done = threading.Event()

    def registered(self, driver, framework_id, master_info):
        self.framework_id = framework_id["value"]

    def resourceOffers(self, driver, offers):
        for offer in offers:
            with self.lock:
                self.offer_hosts.append(offer["hostname"])
                tasks = []
                cpus, mem = scalar(offer, "cpus"), scalar(offer, "mem")
                while len(self.launched) < self.wanted and cpus >= CPUS and mem >= MEM:
                    task_id = "task-%d-%s" % (len(self.launched), uuid.uuid4().hex[:6])
                    tasks.append(
                        {
                            "task_id": {"value": task_id},
                            "agent_id": offer["agent_id"],
                            "name": task_id,
                            "command": {"value": "echo hello from %s" % task_id},
                            "resources": [
                                {"name": "cpus", "type": "SCALAR", "scalar": {"value": CPUS}},
                                {"name": "mem", "type": "SCALAR", "scalar": {"value": MEM}},
                            ],
                        }
                    )
                    self.launched.append(task_id)
                    cpus -= CPUS
                    mem -= MEM
            if tasks:
                driver.launchTasks(offer["id"], tasks, {"refuse_seconds": 0.1})
            else:
                self.declined.append(offer["id"]["value"])
                with self.lock:
                    wants_more = len(self.launched) < self.wanted
                driver.declineOffer(offer["id"], {"refuse_seconds": 1 if wants_more else 3600})

    def statusUpdate(self, driver, update):
        task_id = update["task_id"]["value"]
        with self.lock:
            self.history.append([task_id, update["state"], "uuid" in update, update.get("reason")])
            if update.get("reason") == "REASON_RECONCILIATION":
                self.reconciled.append([task_id, update["state"]])
            else:
                self.states[task_id] = update["state"]
        if "uuid" in update:
            driver.acknowledgeStatusUpdate(update)
            self.acked.append(update["uuid"])
        with self.lock:
            finished = len(self.launched) == self.wanted and all(
                self.states.get(t) == "TASK_FINISHED" for t in self.launched
            )
            if finished and not self.reconcile_sent:
                self.reconcile_sent = True
                # explicit reconciliation of one known and one unknown task
                driver.reconcileTasks([{"task_id": {"value": self.launched[0]}}, {"task_id": {"value": "no-such-task"}}])
            if finished and len(self.reconciled) >= 2:
                self.done.set()

    def error(self, driver, message):
        logging.error("framework error: %s", message)


def main():
    master, tasks, summary_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    fw = Framework(tasks)
    driver = MesosSchedulerDriver(
        fw,
        {"user": "pymesos-test", "name": "pymesos-framework", "failover_timeout": 30},
        master,
        implicit_acknowledgements=False,
        principal=os.environ.get("MESOS_PRINCIPAL"),
        secret=os.environ.get("MESOS_SECRET"),
    )
    driver.start()
    ok = fw.done.wait(DEADLINE_S)
    driver.stop()  # not a failover: tears the framework down
    driver.join()
    with fw.lock:
        summary = {
            "ok": ok,
            "framework_id": fw.framework_id,
            "launched": fw.launched,
            "states": fw.states,
            "history": fw.history,
            "acked": fw.acked,
            "declined": fw.declined,
            "reconciled": fw.reconciled,
            "offer_hosts": sorted(set(fw.offer_hosts)),
        }
    with open(summary_path, "w") as f:
        json.dump(summary, f)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
