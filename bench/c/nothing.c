/* nothing: exits at once; started by the driver it shows the peak RSS floor (the
 * driver's own pages count towards a child's ru_maxrss until it execs). */
int main(void) { return 0; }
