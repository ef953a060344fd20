# mtpkt's stand-in for the Ruby helper library that Megatest's fullrun area loads from
# $MT_RUN_AREA_HOME/../resources/ruby/librunscript.rb (tests/fullrun/tests/sqlitespeed).
# Megatest's examples do not ship that file; this one gives the functions the runscript
# calls, each a call of the `megatest` command that steps have on their PATH.

def mt_call(*words)
  system("megatest", *words.map(&:to_s))
end

# Runs cmd in a shell as the step stepname: a start record, then an end record that says
# pass when cmd exited 0 and fail otherwise. checks is accepted and not used.
def run_and_record(stepname, cmd, checks = "")
  mt_call("-step", stepname, ":state", "start", ":status", "n/a")
  verdict = system("/bin/sh", "-c", cmd) ? "pass" : "fail"
  mt_call("-step", stepname, ":state", "end", ":status", verdict)
end

def record_step(stepname, state, status)
  mt_call("-step", stepname, ":state", state, ":status", status)
end

def test_status(state, status)
  mt_call("-test-status", ":state", state, ":status", status)
end

# Sets the test COMPLETED, passing when filename's size is within [minsize, maxsize].
def file_size_checker(stepname, filename, minsize, maxsize)
  size = File.size(filename)
  verdict = size.between?(minsize, maxsize) ? "pass" : "fail"
  test_status("COMPLETED", verdict)
end

def wait_for_step(testname, stepname)
end
