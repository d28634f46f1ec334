// How often the kernel delivers a thread-CPU-time timer's signal, with no profiler: one
// thread spins for 1.5 s of CPU under a timer_create(thread CPU clock, SIGEV_THREAD_ID)
// timer of PERIOD_US; prints signals received vs expected, the longest gap and the tail
// after the last signal (docs/architecture.md, "A busy machine": under four busy loops on
// two cores, 40-60 signals per CPU-second whatever the period).
//
//   cc -O2 -o /tmp/cpu_timer_check scripts/cpu_timer_check.c && /tmp/cpu_timer_check 4000
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/syscall.h>
static volatile int n; static long cpu[100000];
static long tcpu(){struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t); return t.tv_sec*1000000000L+t.tv_nsec;}
static void h(int s, siginfo_t*i, void*u){ if(n<100000) cpu[n++]=tcpu(); }
int main(int argc,char**argv){
  long period = atol(argv[1])*1000; // us
  struct sigaction sa={0}; sa.sa_sigaction=h; sa.sa_flags=SA_SIGINFO|SA_RESTART; sigaction(SIGPROF,&sa,0);
  struct sigevent sev={0}; sev.sigev_notify=SIGEV_THREAD_ID; sev.sigev_signo=SIGPROF; sev._sigev_un._tid=syscall(SYS_gettid);
  timer_t id; clockid_t c; pthread_getcpuclockid(pthread_self(),&c); timer_create(c,&sev,&id);
  struct itimerspec sp={{0,period},{0,period}}; timer_settime(id,0,&sp,0);
  while(tcpu()<1500000000L){}
  long tail = tcpu()-cpu[n-1];
  long maxgap=0; for(int k=1;k<n;k++){ long g=cpu[k]-cpu[k-1]; if(g>maxgap)maxgap=g; }
  printf("period %ld us: %d signals in 1.5s cpu (expected %ld), max gap %.1f ms, tail %.1f ms\n", period/1000, n, 1500000000L/period, maxgap/1e6, tail/1e6);
}
